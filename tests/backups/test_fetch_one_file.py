"""One file, now: a single file streamed from its best healthy copy (real SeaweedFS and folders), sha256-checked on
the way, falling back to the next copy; a damaged copy is never served as good; archived copies ask first."""

import datetime as dt
import hashlib
import os
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from backups.fetch import asset_fetch, fetch_candidates
from backups.ingest import wedding_import
from backups.models import Asset, AuditEvent, BackupPolicy
from backups.signals import wedding_read
from backups.tasks import backup_start
from providers.breaker import breaker_store
from providers.localservers.seaweedfs import create_bucket
from providers.models import Provider
from tests.factories import make_provider, make_wedding
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, ensure_running
from tests.views import make_replica
from tests.weddings import jpeg

URL = "/weddings/{slug}/files/{pk}/"


@pytest.fixture
def backed_up(tmp_path, seaweedfs, run_workers, settings):
    """A wedding backed up to SeaweedFS (named to be the preferred copy) and two folders."""
    settings.WEDBACKUP_PART_SIZE = 5 * 1024 * 1024
    ensure_running(seaweedfs)
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers = 3, 1
    policy.save()
    bucket = f"wb-{uuid.uuid4().hex[:16]}"
    create_bucket(seaweedfs, bucket)
    Provider.objects.create(name="a-seaweed", kind="aws_s3", region="us-east-1", bucket=bucket,
                            endpoint=seaweedfs.extra["endpoint"],
                            credentials={"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY})
    for name in ("b-folder", "c-folder"):
        make_provider(name=name, kind="watched_folder", region="us-east-1", bucket=str(tmp_path / name),
                      options={"create": True})
    src = tmp_path / "wedding"
    (src / "ceremony").mkdir(parents=True)
    (src / "ceremony" / "first dance ü.jpg").write_bytes(jpeg(320, 240, (90, 120, 200), "2026:06:20 18:00:00")
                                                         + os.urandom(1_500_000))  # over one read chunk (1 MiB)
    wedding = wedding_import(path=src, couple="Ana & Ben", date=dt.date(2026, 6, 20), country="US").wedding
    backup_start(wedding=wedding)
    run_workers()
    asset = Asset.objects.get(wedding=wedding)
    assert asset.replicas.filter(status="verified").count() == 3
    return asset


def download(client, asset) -> tuple[object, bytes]:
    response = client.get(URL.format(slug=asset.wedding.slug, pk=asset.pk))
    return response, b"".join(response.streaming_content) if response.status_code == 200 else b""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("part_size", [5 * 1024 * 1024, 16 * 1024], ids=["buffered", "streamed"])
def test_one_photo_downloads_from_the_preferred_copy_with_the_catalogue_sha256(staff_client, staff_user, backed_up,
                                                                                settings, part_size):
    settings.WEDBACKUP_PART_SIZE = part_size
    reads = []
    wedding_read.connect(lambda **kw: reads.append((kw["kind"], kw["bytes"])), weak=False, dispatch_uid="t-read")
    try:
        response, body = download(staff_client, backed_up)
    finally:
        wedding_read.disconnect(dispatch_uid="t-read")
    assert response.status_code == 200
    assert hashlib.sha256(body).hexdigest() == backed_up.sha256
    assert response["Content-Length"] == str(backed_up.size) == str(len(body))
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''first%20dance%20%C3%BC.jpg"
    assert response["X-Served-From"] == "a-seaweed"
    assert response["Content-Type"] == "image/jpeg"
    event = AuditEvent.objects.get(action="asset.download")
    assert event.actor == staff_user and event.target.endswith("ceremony/first dance ü.jpg")
    assert reads == [("download", backed_up.size)]


@pytest.mark.django_db(transaction=True)
def test_with_the_preferred_provider_stopped_it_comes_from_the_next_copy(staff_client, backed_up, seaweedfs):
    seaweedfs.stop()
    try:
        response, body = download(staff_client, backed_up)
    finally:
        ensure_running(seaweedfs)
    assert response.status_code == 200 and response["X-Served-From"] == "b-folder"
    assert hashlib.sha256(body).hexdigest() == backed_up.sha256
    assert AuditEvent.objects.get(action="asset.download").details["fallbacks"] == 1


@pytest.mark.django_db(transaction=True)
def test_with_the_preferred_copy_removed_it_comes_from_the_next_copy(staff_client, backed_up):
    Provider.objects.filter(name="a-seaweed").update(enabled=False)
    (next(Path(backed_up.replicas.get(provider__name="b-folder").provider.bucket).rglob("*.jpg"))).unlink()
    response, body = download(staff_client, backed_up)
    assert response["X-Served-From"] == "c-folder"
    assert hashlib.sha256(body).hexdigest() == backed_up.sha256


def flip_a_byte(asset, provider_name: str) -> None:
    stored = next(Path(asset.replicas.get(provider__name=provider_name).provider.bucket).rglob("*.jpg"))
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))


@pytest.mark.django_db(transaction=True)
def test_a_small_damaged_copy_is_checked_before_sending_and_the_next_copy_served(staff_client, backed_up):
    Provider.objects.filter(name="a-seaweed").update(enabled=False)
    flip_a_byte(backed_up, "b-folder")
    response, body = download(staff_client, backed_up)
    assert response["X-Served-From"] == "c-folder"
    assert hashlib.sha256(body).hexdigest() == backed_up.sha256
    b_folder = Provider.objects.get(name="b-folder")
    assert breaker_store().window(b_folder.pk).failures >= 1


@pytest.mark.django_db(transaction=True)
def test_a_large_damaged_copy_is_cut_off_never_served_complete(staff_client, backed_up, settings):
    settings.WEDBACKUP_PART_SIZE = 16 * 1024
    Provider.objects.filter(name="a-seaweed").update(enabled=False)
    flip_a_byte(backed_up, "b-folder")
    response = staff_client.get(URL.format(slug=backed_up.wedding.slug, pk=backed_up.pk))
    assert response.status_code == 200 and response["X-Served-From"] == "b-folder"
    received = bytearray()
    with pytest.raises(Exception, match="does not match its sha256"):
        for chunk in response.streaming_content:
            received += chunk
    assert len(received) < backed_up.size  # the last chunk was held back: the download is visibly incomplete
    assert breaker_store().window(Provider.objects.get(name="b-folder").pk).failures >= 1


@pytest.mark.django_db
def test_a_file_only_in_an_archive_class_shows_hours_and_fee_before_asking(staff_client, rq_queues):
    wedding = make_wedding()
    asset = Asset.objects.create(wedding=wedding, relative_path="video/first-dance.mp4", kind="video", size=10,
                                 sha256="0" * 64)
    make_replica(asset, make_provider(name="s3-archive"), storage_class="DEEP_ARCHIVE")
    page = staff_client.get(URL.format(slug=wedding.slug, pk=asset.pk)).content.decode()
    assert "a rehydration fee applies" in page and "data-rehydration-hours" in page
    assert "48 hours" in page or "12 hours" in page
    assert not AuditEvent.objects.filter(action="asset.download").exists()


@pytest.mark.django_db
def test_a_file_of_another_wedding_is_not_found(staff_client, rq_queues):
    asset = Asset.objects.create(wedding=make_wedding(), relative_path="a.jpg", kind="photo", size=1, sha256="0" * 64)
    assert staff_client.get(URL.format(slug=make_wedding().slug, pk=asset.pk)).status_code == 404


@pytest.mark.django_db
def test_no_good_copy_says_so_on_the_wedding_page(staff_client, rq_queues):
    asset = Asset.objects.create(wedding=make_wedding(), relative_path="a.jpg", kind="photo", size=1, sha256="0" * 64)
    response = staff_client.get(URL.format(slug=asset.wedding.slug, pk=asset.pk), follow=True)
    assert "Download failed" in response.content.decode()
    with pytest.raises(Exception, match="no verified copy"):
        asset_fetch(asset=asset, by=None)
    assert fetch_candidates(asset=asset)[0] == []


def role_client(django_user_model, role: str | None) -> Client:
    user = django_user_model.objects.create_user(f"u-{role}", "u@example.com", "pw", is_staff=True)
    if role:
        group, _ = Group.objects.get_or_create(name=role)
        if role == "operator":
            group.permissions.add(Permission.objects.get(codename="restore_wedding"),
                                  Permission.objects.get(codename="view_wedding"))
        else:
            group.permissions.add(Permission.objects.get(codename="view_wedding"))
        user.groups.add(group)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_permissions_anonymous_login_bare_and_viewer_403_operator_downloads(django_user_model, backed_up):
    url = URL.format(slug=backed_up.wedding.slug, pk=backed_up.pk)
    assert Client().get(url)["Location"].startswith("/accounts/login/")
    assert role_client(django_user_model, None).get(url).status_code == 403
    assert role_client(django_user_model, "viewer").get(url).status_code == 403
    response = role_client(django_user_model, "operator").get(url)
    assert response.status_code == 200
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == backed_up.sha256


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("part_size", [5 * 1024 * 1024, 16 * 1024], ids=["buffered", "streamed"])
def test_a_client_side_encrypted_copy_downloads_as_the_plaintext(staff_client, tmp_path, run_workers,
                                                                  three_folder_providers, settings, part_size):
    policy = BackupPolicy.default()
    policy.client_side_encryption = True
    policy.save()
    src = tmp_path / "wedding"
    src.mkdir()
    (src / "vows.jpg").write_bytes(jpeg(64, 64, (1, 2, 3), "2026:06:20 14:00:00") + os.urandom(1_200_000))
    wedding = wedding_import(path=src, couple="Cy & Di", date=dt.date(2026, 6, 20), country="US").wedding
    backup_start(wedding=wedding)
    run_workers()
    asset = Asset.objects.get(wedding=wedding)
    assert asset.replicas.filter(encrypted=True, status="verified").exists()
    settings.WEDBACKUP_PART_SIZE = part_size
    response, body = download(staff_client, asset)
    assert hashlib.sha256(body).hexdigest() == asset.sha256 and len(body) == asset.size
