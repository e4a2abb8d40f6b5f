"""A lost provider makes the engine check what is left: for a wedding-day-critical wedding, every surviving copy
is checked on the providers themselves before the failover round, and a damaged one is replaced at once."""

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from backups.failover import provider_mark_down
from backups.ingest import wedding_import
from backups.models import BackupJob, Replica
from backups.planning import asset_gaps
from backups.tasks import backup_start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def folders(two_copy_folders):
    return two_copy_folders(4)


def _wedding(tmp_path, date):
    src = tmp_path / f"wedding-{date}"
    src.mkdir()
    for i in range(3):
        (src / f"IMG_{i}.jpg").write_bytes(b"\xff\xd8\xff" + bytes([i]) * 5000)
    return wedding_import(path=src, couple=f"Couple {date}", date=date, country="US").wedding


def _damage_one_survivor(wedding, lost_id: int) -> Replica:
    survivor = Replica.objects.filter(asset__wedding=wedding, status="verified").exclude(provider_id=lost_id).first()
    Path(survivor.provider.bucket, survivor.object_key).write_bytes(b"truncated")  # damaged behind our back
    return survivor


def test_a_critical_weddings_damaged_survivor_is_found_and_replaced(folders, tmp_path, run_workers):
    wedding = _wedding(tmp_path, timezone.localdate())
    assert wedding.wedding_day_critical
    backup_start(wedding=wedding)
    run_workers()
    lost_id = Replica.objects.filter(asset__wedding=wedding, status="verified").values_list(
        "provider_id", flat=True).first()
    damaged = _damage_one_survivor(wedding, lost_id)

    provider_mark_down(provider=folders[0].__class__.objects.get(pk=lost_id), by="test", reason="drill")
    job = BackupJob.objects.get(wedding=wedding, kind=BackupJob.Kind.FAILOVER)
    assert job.queue == "critical" and job.params["validate_survivors_of"] == lost_id
    run_workers()
    job.refresh_from_db()
    report = job.params["survivors"]
    assert report["checked"] == 3 and report["ok"] == 2
    assert report["damaged"] == [f"{damaged.provider.name}: {damaged.object_key}: size 9 differs from the "
                                 f"recorded {damaged.size}"]
    damaged.refresh_from_db()  # replaced in place from a good copy, and verified again
    assert damaged.status == Replica.Status.VERIFIED
    assert Path(damaged.provider.bucket, damaged.object_key).read_bytes() == Path(
        damaged.asset.source_location).read_bytes()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    assert asset_gaps(wedding) == {}  # the file is back to two good copies without the lost provider
    good = Replica.objects.filter(asset=damaged.asset, status="verified").exclude(provider_id=lost_id)
    assert good.count() >= 2


def test_other_weddings_are_not_checked_first(folders, tmp_path, run_workers):
    wedding = _wedding(tmp_path, dt.date(2023, 5, 1))
    backup_start(wedding=wedding)
    run_workers()
    lost_id = Replica.objects.filter(asset__wedding=wedding, status="verified").values_list(
        "provider_id", flat=True).first()
    provider_mark_down(provider=folders[0].__class__.objects.get(pk=lost_id), by="test", reason="drill")
    job = BackupJob.objects.get(wedding=wedding, kind=BackupJob.Kind.FAILOVER)
    run_workers()
    job.refresh_from_db()
    assert job.queue == "default" and "survivors" not in job.params
