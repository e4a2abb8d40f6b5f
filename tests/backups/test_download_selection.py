"""A selection from the grid as one zip: each file from its best healthy copy, sha256 as catalogued, the next copy when
one is gone, files no copy can serve named inside the zip, audited, capped with a clear message."""

import datetime as dt
import hashlib
import io
import os
import shutil
import zipfile

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from backups import selection
from backups.ingest import wedding_import
from backups.models import Asset, AuditEvent
from backups.tasks import backup_start
from tests.factories import make_provider, make_wedding
from tests.views import make_replica
from tests.weddings import jpeg

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def photos(tmp_path, run_workers, three_folder_providers):
    src = tmp_path / "wedding"
    (src / "ceremony").mkdir(parents=True)
    for i, colour in enumerate([(200, 10, 10), (10, 200, 10), (10, 10, 200)]):
        (src / "ceremony" / f"IMG_{i}.jpg").write_bytes(jpeg(96, 64, colour, "2026:06:20 15:00:00")
                                                        + os.urandom(50_000))
    wedding = wedding_import(path=src, couple="Ana & Ben", date=dt.date(2026, 6, 20), country="US").wedding
    backup_start(wedding=wedding)
    run_workers()
    assets = list(Asset.objects.filter(wedding=wedding).order_by("relative_path"))
    assert all(a.replicas.filter(status="verified").count() == 3 for a in assets)
    return assets


def zip_of(client, wedding, assets, **extra):
    return client.post(f"/weddings/{wedding.slug}/files/zip/", {"asset": [a.pk for a in assets]}, **extra)


def entries(response) -> dict[str, bytes]:
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def test_the_ticked_files_come_as_a_zip_with_their_catalogue_sha256_and_an_audit(staff_client, staff_user, photos):
    wedding = photos[0].wedding
    response = zip_of(staff_client, wedding, photos[:2])
    assert response["Content-Disposition"] == f'attachment; filename="{wedding.slug}-2-files.zip"'
    files = entries(response)
    assert sorted(files) == ["ceremony/IMG_0.jpg", "ceremony/IMG_1.jpg"]
    for asset in photos[:2]:
        assert hashlib.sha256(files[asset.relative_path]).hexdigest() == asset.sha256
    event = AuditEvent.objects.get(action="asset.download_selection")
    assert event.actor == staff_user and event.details["files"] == 2
    assert event.details["paths"] == ["ceremony/IMG_0.jpg", "ceremony/IMG_1.jpg"]
    assert AuditEvent.objects.filter(action="asset.download").count() == 2


def test_a_file_whose_preferred_copy_is_gone_comes_from_the_next_and_unservable_ones_are_named(
        staff_client, photos, three_folder_providers, tmp_path):
    wedding = photos[0].wedding
    first = photos[0].replicas.get(status="verified", provider=three_folder_providers[0])
    served_before = AuditEvent.objects.count()
    shutil.rmtree(three_folder_providers[0].bucket)  # the preferred copies' folder is gone
    archived = Asset.objects.create(wedding=wedding, relative_path="video/dance.mp4", kind="video", size=10,
                                    sha256="0" * 64)
    make_replica(archived, make_provider(name="deep"), storage_class="DEEP_ARCHIVE")
    files = entries(zip_of(staff_client, wedding, [*photos, archived]))
    assert sorted(files) == ["NOT-INCLUDED.txt", *[a.relative_path for a in photos]]
    for asset in photos:
        assert hashlib.sha256(files[asset.relative_path]).hexdigest() == asset.sha256
    assert b"video/dance.mp4: archived, rehydrate it first" in files["NOT-INCLUDED.txt"]
    downloads = AuditEvent.objects.filter(action="asset.download", pk__gt=served_before)
    assert first.provider.name not in {e.details["provider"] for e in downloads}
    assert all(e.details["fallbacks"] == 1 for e in downloads)


@pytest.mark.parametrize("case", ["empty", "too many", "too big", "another wedding's"])
def test_a_selection_over_the_caps_or_not_of_this_wedding_says_why(staff_client, rq_queues, settings, monkeypatch,
                                                                    case):
    wedding = make_wedding()
    assets = [Asset.objects.create(wedding=wedding, relative_path=f"a{i}.jpg", kind="photo", size=100,
                                   sha256="0" * 64) for i in range(3)]
    expected = {"empty": "no file selected", "too many": "a selection holds at most 2",
                "too big": "over the 0.0 MB a selection may hold", "another wedding's": "not files of this wedding"}
    if case == "empty":
        assets = []
    elif case == "too many":
        monkeypatch.setattr(selection, "MAX_FILES", 2)
    elif case == "too big":
        settings.WEDBACKUP_ZIP_MAX_BYTES = 250
    else:
        assets[0] = Asset.objects.create(wedding=make_wedding(), relative_path="x.jpg", kind="photo", size=1,
                                         sha256="0" * 64)
    response = zip_of(staff_client, wedding, assets, follow=True)
    assert expected[case] in response.content.decode()
    assert response.redirect_chain[-1][0].endswith(f"/weddings/{wedding.slug}/#photos")
    assert not AuditEvent.objects.filter(action="asset.download_selection").exists()


def test_it_needs_the_restore_permission_and_a_post(django_user_model, rq_queues):
    wedding = make_wedding()
    url = f"/weddings/{wedding.slug}/files/zip/"
    viewer = django_user_model.objects.create_user("vera", "v@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_wedding"))
    client = Client()
    client.force_login(viewer)
    assert client.post(url, {"asset": []}).status_code == 403
    assert 'data-download-selected' not in client.get(f"/weddings/{wedding.slug}/").content.decode()
    viewer.user_permissions.add(Permission.objects.get(codename="restore_wedding"))
    client.force_login(viewer)
    assert client.get(url).status_code == 405
    assert 'data-download-selected' in client.get(f"/weddings/{wedding.slug}/").content.decode()
