"""The right to erasure: every object of a wedding, everywhere, then its records; refused under hold or lock."""

import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from backups.layout import manifest_key, object_key, wedding_prefix
from backups.models import Asset, AuditEvent, Replica, Wedding
from providers.backends import backend_for
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(tmp_path):
    wedding = make_wedding()
    providers = [make_provider(name=f"nas-{n}", kind="watched_folder", bucket=str(tmp_path / n),
                               options={"create": True}) for n in "ab"]
    for n in range(3):
        data = f"photo {n}".encode()
        asset = make_asset(wedding, relative_path=f"ceremony/{n}.jpg", data=data)
        for provider in providers:
            info = backend_for(provider).put(object_key(asset), io.BytesIO(data), len(data),
                                             sha256=hashlib.sha256(data).hexdigest())
            Replica.objects.create(asset=asset, provider=provider, object_key=info.key, size=len(data),
                                   status=Replica.Status.VERIFIED, sha256=asset.sha256, checksums=info.checksums)
    for key in (manifest_key(wedding), f"{wedding_prefix(wedding)}photo/orphan.jpg"):
        backend_for(providers[0]).put(key, io.BytesIO(b"{}"), 2, sha256=hashlib.sha256(b"{}").hexdigest())
    return wedding, providers


def files_of(provider: object, wedding: Wedding) -> list[Path]:
    return [p for p in (Path(provider.bucket) / wedding_prefix(wedding)).rglob("*") if p.is_file()]


def test_erasure_deletes_every_object_everywhere_then_the_records(stored, capsys):
    wedding, providers = stored
    slug = wedding.slug
    call_command("erase_wedding", wedding.pk, "--confirm", slug, "--json")
    report = json.loads(capsys.readouterr().out)
    assert len(report["objects"]) == 3 * 2 + 2 and report["assets"] == 3
    assert all(files_of(p, wedding) == [] for p in providers)
    assert not Wedding.objects.filter(slug=slug).exists() and not Asset.objects.exists()
    event = AuditEvent.objects.get(action="wedding.erase")
    assert event.target == f"wedding:{slug}" and event.details["count"] == 8  # the record outlives the wedding


def test_erasure_is_refused_under_legal_hold_and_while_locked(stored):
    wedding, providers = stored
    wedding.legal_hold = True
    wedding.save()
    with pytest.raises(CommandError, match="legal hold"):
        call_command("erase_wedding", wedding.pk, "--confirm", wedding.slug)
    Wedding.objects.filter(pk=wedding.pk).update(legal_hold=False)
    Replica.objects.filter(provider=providers[0]).update(retain_until=timezone.now() + dt.timedelta(days=3))
    with pytest.raises(CommandError, match="locked until"):
        call_command("erase_wedding", wedding.pk, "--confirm", wedding.slug)
    assert len(files_of(providers[1], wedding)) == 3 and Wedding.objects.filter(pk=wedding.pk).exists()


def test_the_slug_must_be_typed_again(stored):
    wedding, providers = stored
    with pytest.raises(CommandError, match="--confirm must be"):
        call_command("erase_wedding", wedding.pk, "--confirm", "someone-else")
    assert len(files_of(providers[0], wedding)) == 5


def test_erasure_waits_for_writing_jobs_and_for_every_holder_to_be_reachable(stored):
    from backups.models import BackupJob

    wedding, providers = stored
    job = BackupJob.objects.create(wedding=wedding, kind=BackupJob.Kind.REPAIR, status=BackupJob.Status.RUNNING)
    with pytest.raises(CommandError, match="still writing"):
        call_command("erase_wedding", wedding.pk, "--confirm", wedding.slug)
    BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.SUCCEEDED)
    type(providers[1]).objects.filter(pk=providers[1].pk).update(enabled=False)
    with pytest.raises(CommandError, match="disabled"):
        call_command("erase_wedding", wedding.pk, "--confirm", wedding.slug)
    assert len(files_of(providers[0], wedding)) == 5 and len(files_of(providers[1], wedding)) == 3
