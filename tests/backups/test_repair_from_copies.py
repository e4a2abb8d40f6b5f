"""A damaged copy is repaired from a good copy when the studio's file is gone or has changed since: the repair
never depends on the source folder still holding the catalogued bytes."""

import datetime as dt
import shutil
from pathlib import Path

import pytest

from backups.ingest import wedding_import
from backups.models import BackupJob, BackupPolicy, Replica
from backups.tasks import backup_start
from backups.verify import wedding_verify
from tests.factories import make_provider

pytestmark = pytest.mark.django_db(transaction=True)
BIG = 3 * 1024 * 1024  # over the part size below: streamed from the stand-in file, not buffered


@pytest.fixture
def setup(tmp_path, settings):
    settings.WEDBACKUP_PART_SIZE = 1024 * 1024
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers = 2, 1
    policy.save()
    providers = [make_provider(name=f"nas-{i}", kind="watched_folder", region="us-east-1",
                               bucket=str(tmp_path / f"nas-{i}"), options={"create": True}) for i in range(2)]
    src = tmp_path / "wedding"
    src.mkdir()
    (src / "small.jpg").write_bytes(b"\xff\xd8\xff" + b"s" * 5000)
    (src / "film.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"v" * BIG)
    wedding = wedding_import(path=src, couple="Lia & Tom", date=dt.date(2024, 5, 1), country="US").wedding
    return wedding, providers, src


def _flip(replica: Replica) -> None:
    path = Path(replica.provider.bucket, replica.object_key)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["small.jpg", "film.mp4"])
def test_a_damaged_copy_is_repaired_from_the_other_copy_once_the_source_is_gone(setup, run_workers, name):
    wedding, providers, src = setup
    backup_start(wedding=wedding)
    run_workers()
    original = (src / name).read_bytes()
    (src / name).unlink()  # the card was formatted, the disk reused
    damaged = Replica.objects.get(asset__relative_path=name, provider=providers[0])
    _flip(damaged)
    report = wedding_verify(wedding=wedding, deep=True)  # finds it and starts the repair job
    assert len(report.mismatched) == 1 and report.repair_job
    run_workers()
    assert BackupJob.objects.get(pk=report.repair_job).status == BackupJob.Status.SUCCEEDED
    damaged.refresh_from_db()
    assert damaged.status == Replica.Status.VERIFIED
    assert Path(damaged.provider.bucket, damaged.object_key).read_bytes() == original
    assert not list(Path("/tmp").glob("wedbackup-copy-*/asset"))  # the stand-in file is removed


def test_with_no_good_copy_left_the_repair_fails_and_says_why(setup, run_workers):
    wedding, providers, src = setup
    backup_start(wedding=wedding)
    run_workers()
    (src / "small.jpg").unlink()
    for replica in Replica.objects.filter(asset__relative_path="small.jpg"):
        _flip(replica)
    report = wedding_verify(wedding=wedding, deep=True)
    run_workers()
    job = BackupJob.objects.get(pk=report.repair_job)
    assert job.status != BackupJob.Status.SUCCEEDED
    assert "source file is missing" in job.error_summary


def test_a_good_copy_that_is_only_unreachable_leaves_the_repair_to_a_later_round(setup, run_workers):
    """Source gone and the good copy briefly out of reach: the damaged copy's provider is not given up on for the
    file (no permanent failure); once the good copy is back, the next round repairs it."""
    wedding, providers, src = setup
    backup_start(wedding=wedding)
    run_workers()
    original = (src / "small.jpg").read_bytes()
    (src / "small.jpg").unlink()
    damaged = Replica.objects.get(asset__relative_path="small.jpg", provider=providers[0])
    _flip(damaged)
    report = wedding_verify(wedding=wedding, deep=True)
    holder = Path(providers[1].bucket)
    holder.rename(holder.with_name("nas-1-unmounted"))  # the share with the good copy drops out
    run_workers()
    damaged.refresh_from_db()
    assert BackupJob.objects.get(pk=report.repair_job).status != BackupJob.Status.SUCCEEDED
    assert damaged.status == Replica.Status.FAILED and not damaged.permanent_failure
    shutil.rmtree(holder, ignore_errors=True)  # the empty folder the backend made while the share was away
    holder.with_name("nas-1-unmounted").rename(holder)  # back
    backup_start(wedding=wedding)
    run_workers()
    damaged.refresh_from_db()
    assert damaged.status == Replica.Status.VERIFIED
    assert Path(damaged.provider.bucket, damaged.object_key).read_bytes() == original
