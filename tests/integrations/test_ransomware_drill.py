"""The ransomware drill (issue 15): with the app's own credentials, every object of a wedding is overwritten and
deleted through the SDK; the locked versions survive on SeaweedFS with Object Lock, and restore_wedding brings
back every file bit-identical. Plus the lock's renewal, and the guarded delete respecting lock and legal hold."""

import datetime as dt
import hashlib
import io
import shutil
import uuid
from pathlib import Path

import pytest
from b2sdk.v2 import exception as b2exc
from botocore.exceptions import ClientError
from django.utils import timezone

from backups.deletion import DeleteRefused, replica_delete
from backups.ingest import wedding_import
from backups.layout import wedding_prefix
from backups.models import BackupJob, BackupPolicy, Replica
from backups.restore import wedding_restore
from backups.retention import lock_until, retention_renew
from backups.tasks import backup_start
from providers.backends import b2 as b2_module
from providers.backends import backend_from_config
from providers.localservers.seaweedfs import create_bucket, s3_client
from providers.models import Provider
from tests.factories import make_wedding
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, ensure_running, seaweedfs_config

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.servers]


@pytest.fixture
def locked_fleet(seaweedfs, settings):
    """Two S3 providers on SeaweedFS buckets created with Object Lock (which versions them), and a policy that
    keeps a wedding for a year after its date."""
    settings.WEDBACKUP_LOCK_WINDOW_DAYS = 30
    ensure_running(seaweedfs)
    client = s3_client(seaweedfs)
    providers = []
    for kind in ("aws_s3", "wasabi"):
        bucket = f"wb-lock-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        providers.append(Provider.objects.create(
            name=f"{kind}-locked", kind=kind, region="us-east-1", bucket=bucket, endpoint=seaweedfs.extra["endpoint"],
            credentials={"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY},
            options={"object_lock_mode": "GOVERNANCE"}))
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers, policy.retention_days = 2, 2, 365
    policy.enforce_residency = False
    policy.save()
    return client, providers


def wedding_backed_up(tmp_path, run_workers):
    src = tmp_path / "ana-ben"
    (src / "ceremony").mkdir(parents=True)
    for n in range(4):
        (src / "ceremony" / f"IMG_{n}.jpg").write_bytes(b"\xff\xd8\xff" + bytes([n]) * 5000)
    (src / "contract.pdf").write_bytes(b"%PDF-1.4 the contract")
    wedding = wedding_import(path=src, couple="Ana & Ben", date=timezone.localdate() - dt.timedelta(days=10),
                             country="US").wedding
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    return src, wedding


def test_ransomware_with_our_own_keys_cannot_take_the_wedding(locked_fleet, tmp_path, run_workers):
    client, providers = locked_fleet
    src, wedding = wedding_backed_up(tmp_path, run_workers)
    replicas = list(Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED))
    assert len(replicas) == 2 * wedding.assets.count()
    assert all(r.retain_until and r.version_id for r in replicas)  # written locked, the version recorded
    attacked = refused = 0
    for provider in providers:
        listing = client.list_object_versions(Bucket=provider.bucket, Prefix=wedding_prefix(wedding))
        for version in listing.get("Versions", []):
            key = version["Key"]
            client.put_object(Bucket=provider.bucket, Key=key, Body=b"ENCRYPTED BY RANSOMWARE")
            client.delete_object(Bucket=provider.bucket, Key=key)  # a delete marker: allowed
            try:
                client.delete_object(Bucket=provider.bucket, Key=key, VersionId=version["VersionId"])
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "AccessDenied"
                refused += 1
            attacked += 1
    assert attacked and refused == attacked - 2  # every locked version held; the manifests are not locked
    report = wedding_restore(wedding=wedding, to=tmp_path / "restored")
    assert report.failed == {} and len(report.restored) == wedding.assets.count()
    for asset in wedding.assets.all():
        restored = (tmp_path / "restored" / asset.relative_path).read_bytes()
        assert restored == (src / asset.relative_path).read_bytes()
        assert hashlib.sha256(restored).hexdigest() == asset.sha256


def test_locks_are_renewed_while_the_retention_runs_and_never_shortened(locked_fleet, tmp_path, run_workers):
    client, providers = locked_fleet
    _, wedding = wedding_backed_up(tmp_path, run_workers)
    replica = Replica.objects.filter(asset__wedding=wedding, provider=providers[0]).first()
    first = replica.retain_until
    assert first - timezone.now() <= dt.timedelta(days=30, minutes=1)  # at most one window ahead
    later = timezone.now() + dt.timedelta(days=25)  # what the daily job sees 25 days on
    assert retention_renew(now=later)["renewed"] == 2 * wedding.assets.count()
    replica.refresh_from_db()
    assert replica.retain_until == lock_until(wedding=wedding, retention_days=365, now=later) > first
    head = client.head_object(Bucket=providers[0].bucket, Key=replica.object_key, VersionId=replica.version_id)
    assert abs(head["ObjectLockRetainUntilDate"] - replica.retain_until) < dt.timedelta(seconds=1)
    assert retention_renew(now=later)["renewed"] == 0  # idempotent


def test_the_guarded_delete_respects_the_lock_and_the_legal_hold(locked_fleet, tmp_path, run_workers):
    _, providers = locked_fleet
    _, wedding = wedding_backed_up(tmp_path, run_workers)
    replica = Replica.objects.filter(asset__wedding=wedding, provider=providers[1]).first()
    with pytest.raises(DeleteRefused, match="locked until"):
        replica_delete(replica=replica, reason="test")
    Replica.objects.filter(asset__wedding=wedding).update(retain_until=None)
    wedding.legal_hold = True
    wedding.save()
    with pytest.raises(DeleteRefused, match="legal hold"):
        replica_delete(replica=replica, reason="test")
    replica.refresh_from_db()
    assert replica.status == Replica.Status.VERIFIED


def test_no_lock_is_planned_outside_the_retention_period():
    old, recent = make_wedding(date=dt.date(2020, 1, 1)), make_wedding(date=timezone.localdate())
    assert lock_until(wedding=old, retention_days=365) is None  # that retention ended in 2021
    assert lock_until(wedding=recent, retention_days=0) is None
    now = timezone.now()
    assert lock_until(wedding=recent, retention_days=10, now=now) <= now + dt.timedelta(days=10)


def test_keep_versions_turns_a_delete_into_a_soft_delete(seaweedfs):
    ensure_running(seaweedfs)
    bucket = create_bucket(seaweedfs, f"wb-soft-{uuid.uuid4().hex[:12]}", versioning=True)
    backend = backend_from_config(seaweedfs_config(seaweedfs, "aws_s3", bucket, options={"keep_versions": True}))
    data = b"\xff\xd8\xff the vows"
    info = backend.put("weddings/x/photo/v.jpg", io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest())
    backend.delete("weddings/x/photo/v.jpg")
    assert backend.head("weddings/x/photo/v.jpg") is None  # gone for everyone reading the bucket
    with backend.open_version("weddings/x/photo/v.jpg", info.version_id) as fh:
        assert fh.read() == data  # until the bucket's lifecycle rule purges the old version


def test_the_drill_on_b2s_simulator(b2_sim, monkeypatch, tmp_path, run_workers, settings):
    """The drill on B2 File Lock (b2sdk's simulator; the engine's B2 backends are built on it here). The second
    copy is a watched folder the attacker empties, so every file must come back from the locked B2 versions.
    (One B2 bucket: the simulator numbers file ids per bucket, so ids from two buckets would collide.)"""
    monkeypatch.setattr(b2_module, "_default_api", b2_sim.api_factory)
    settings.WEDBACKUP_LOCK_WINDOW_DAYS = 30
    bucket_name = f"wb-lock-{uuid.uuid4().hex[:8]}"
    b2_sim.api.create_bucket(bucket_name, "allPrivate", is_file_lock_enabled=True)
    Provider.objects.create(name="b2-locked", kind="b2", region="us-west-004", bucket=bucket_name,
                            credentials=dict(b2_sim.config.credentials), options={"object_lock_mode": "governance"})
    nas = Provider.objects.create(name="nas", kind="watched_folder", region="us-east-1", bucket=str(tmp_path / "nas"),
                                  options={"create": True})
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers, policy.retention_days = 2, 1, 365
    policy.enforce_residency = False
    policy.save()
    src, wedding = wedding_backed_up(tmp_path, run_workers)
    assert all(r.retain_until and r.version_id
               for r in Replica.objects.filter(asset__wedding=wedding, provider__kind="b2"))
    bucket = b2_sim.api.get_bucket_by_name(bucket_name)
    refused = 0
    for file_version, _ in list(bucket.ls(wedding_prefix(wedding), recursive=True)):
        name = file_version.file_name
        bucket.upload_bytes(b"ENCRYPTED BY RANSOMWARE", name)  # with our own key
        bucket.hide_file(name)
        try:
            b2_sim.api.delete_file_version(file_version.id_, name)
        except b2exc.AccessDenied:
            refused += 1
    assert refused == wedding.assets.count()  # every locked file held (the manifest is not locked)
    shutil.rmtree(Path(nas.bucket) / wedding_prefix(wedding))  # and the other copy is gone entirely
    report = wedding_restore(wedding=wedding, to=tmp_path / "restored")
    assert report.failed == {} and len(report.restored) == wedding.assets.count()
    for asset in wedding.assets.all():
        assert (tmp_path / "restored" / asset.relative_path).read_bytes() == (src / asset.relative_path).read_bytes()
