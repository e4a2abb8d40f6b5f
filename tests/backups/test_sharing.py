"""Shared links for couples who allowed sharing: the real Dropbox SDK against the HTTPS fake."""

from __future__ import annotations

import hashlib
import io
import logging
import uuid

import pytest

from backups.layout import object_key
from backups.models import Wedding
from backups.sharing import wedding_share
from providers.backends import backend_for
from providers.backends.base import PermanentError
from providers.models import Provider
from tests.factories import make_asset, make_provider, make_wedding
from tests.fixtures.dropbox import TOKEN
from tests.views import make_replica

pytestmark = pytest.mark.django_db


@pytest.fixture
def dropbox(dropbox_fake):
    """A Dropbox Provider row on a fresh root folder of the fake (as tests/fixtures/dropbox.py configures it)."""
    provider = make_provider(name=f"dropbox-{uuid.uuid4().hex[:6]}", kind="dropbox", region="",
                             bucket=f"WedBackup-{uuid.uuid4().hex[:12]}", credentials={"access_token": TOKEN})
    backend_for(provider).ensure_root()
    return provider


def backed_up(wedding: Wedding, provider: Provider, data: bytes = b"photo bytes"):
    """One asset of the wedding really stored on the provider, with its verified replica."""
    asset = make_asset(wedding, data=data)
    backend_for(provider).put(object_key(asset), io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest())
    return make_replica(asset, provider, object_key=object_key(asset))


def test_it_shares_the_wedding_folder_stores_the_link_and_reuses_it(dropbox, dropbox_fake):
    wedding = make_wedding(sharing_allowed=True)
    backed_up(wedding, dropbox)
    link = wedding_share(wedding=wedding)
    assert link.startswith("https://www.dropbox.com/scl/fo/")
    assert f"/Wedding_{wedding.slug}?" in link
    assert (f"/{dropbox.bucket}/Wedding_{wedding.slug}".lower()) in {p for _, p in dropbox_fake.links}
    wedding.refresh_from_db()
    assert wedding.shared_link == link
    assert wedding_share(wedding=Wedding.objects.get(pk=wedding.pk)) == link  # the existing link, not a second one
    assert len([k for k in dropbox_fake.links if k[1].endswith(f"/wedding_{wedding.slug}")]) == 1


def test_without_the_couples_consent_it_clears_the_link_and_shares_nothing(dropbox, dropbox_fake):
    wedding = make_wedding(sharing_allowed=False, shared_link="https://www.dropbox.com/scl/fo/old/x?dl=0")
    backed_up(wedding, dropbox)
    dropbox_fake.calls.clear()
    assert wedding_share(wedding=wedding) == ""
    wedding.refresh_from_db()
    assert wedding.shared_link == ""
    assert dropbox_fake.calls_to("/2/sharing/create_shared_link_with_settings") == []


@pytest.mark.parametrize("change", ["no dropbox copy", "copy not verified", "provider down", "provider disabled"])
def test_only_a_usable_dropbox_provider_with_verified_copies_shares(dropbox, dropbox_fake, change):
    wedding = make_wedding(sharing_allowed=True)
    if change == "no dropbox copy":
        make_replica(make_asset(wedding), make_provider(kind="aws_s3"))
    else:
        replica = backed_up(wedding, dropbox)
    if change == "copy not verified":
        replica.status = "failed"
        replica.save()
    elif change == "provider down":
        Provider.objects.filter(pk=dropbox.pk).update(status=Provider.Status.DOWN)
    elif change == "provider disabled":
        Provider.objects.filter(pk=dropbox.pk).update(enabled=False)
    assert wedding_share(wedding=wedding) == ""
    wedding.refresh_from_db()
    assert wedding.shared_link == ""
    assert dropbox_fake.calls_to("/2/sharing/create_shared_link_with_settings") == []


def test_it_uses_the_dropbox_provider_holding_most_of_the_wedding(dropbox, dropbox_fake):
    wedding = make_wedding(sharing_allowed=True)
    other = make_provider(name="a-dropbox-first-by-name", kind="dropbox", region="",
                          bucket=f"WedBackup-{uuid.uuid4().hex[:12]}", credentials={"access_token": TOKEN})
    backend_for(other).ensure_root()
    backed_up(wedding, other, b"one")
    backed_up(wedding, dropbox, b"two")
    backed_up(wedding, dropbox, b"three")
    wedding_share(wedding=wedding)
    assert [p for _, p in dropbox_fake.links if p.endswith(f"/wedding_{wedding.slug}")] == [
        f"/{dropbox.bucket}/Wedding_{wedding.slug}".lower()]


@pytest.mark.parametrize("fault", ["revoked token", "folder missing"])
def test_a_provider_error_is_logged_never_raised(dropbox, dropbox_fake, caplog, fault):
    wedding = make_wedding(sharing_allowed=True, shared_link="https://www.dropbox.com/scl/fo/kept/x?dl=0")
    if fault == "revoked token":
        backed_up(wedding, dropbox)
        Provider.objects.filter(pk=dropbox.pk).update(credentials={"access_token": "sEcReT-revoked-token"})
    else:
        make_replica(make_asset(wedding), dropbox)  # the catalogue says so, but nothing is on Dropbox
    with caplog.at_level(logging.WARNING, logger="backups.sharing"):
        assert wedding_share(wedding=wedding) == ""
    assert [r.levelname for r in caplog.records if r.name == "backups.sharing"] == ["WARNING"]
    assert wedding.slug in caplog.text
    assert "sEcReT" not in caplog.text
    wedding.refresh_from_db()
    assert wedding.shared_link == "https://www.dropbox.com/scl/fo/kept/x?dl=0"  # a link given earlier still works


def test_the_backend_refuses_to_share_its_whole_root(dropbox):
    with pytest.raises(PermanentError, match="whole Dropbox root"):
        backend_for(dropbox).folder_link("")


def test_the_wedding_page_shows_the_shared_link(staff_client):
    link = "https://www.dropbox.com/scl/fo/abc123/Wedding_x?rlkey=k&dl=0"
    wedding = make_wedding(sharing_allowed=True, shared_link=link)
    html = staff_client.get(f"/weddings/{wedding.slug}/").content.decode()
    assert "Shared with the couple:" in html
    assert 'href="https://www.dropbox.com/scl/fo/abc123/Wedding_x?rlkey=k&amp;dl=0"' in html


def test_the_wedding_page_says_nothing_of_sharing_without_a_link(staff_client):
    wedding = make_wedding(sharing_allowed=True)
    assert "Shared with the couple" not in staff_client.get(f"/weddings/{wedding.slug}/").content.decode()
