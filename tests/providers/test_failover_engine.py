"""Failover with the backup engine, end to end on real watched folders, real Redis and real RQ workers.

A folder goes away after a backup: the monitor opens its breaker, the failover round copies every asset
to a healthy folder (a temporary copy), and when the folder is back the event resolves, repair runs and
the temporary copies are removed because the policy holds without them.
"""

import datetime as dt
from pathlib import Path

import pytest

from backups.ingest import wedding_import
from backups.models import BackupJob, Replica
from backups.planning import asset_gaps
from backups.repair import repair_prune_temporaries
from backups.tasks import backup_start
from providers.health import health_check_all
from providers.models import FailoverEvent, Provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def folders(two_copy_folders):
    return two_copy_folders(3)


@pytest.fixture
def wedding(tmp_path):
    src = tmp_path / "wedding"
    (src / "ceremony").mkdir(parents=True)
    for i in range(3):
        (src / "ceremony" / f"IMG_{i}.jpg").write_bytes(b"\xff\xd8\xff" + bytes([i]) * 5000)
    return wedding_import(path=src, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding


def test_a_lost_folder_is_failed_over_and_repaired(folders, wedding, breakers, settings, run_workers, mailoutbox):
    settings.WEDBACKUP_NOTIFY_EMAILS = ["ops@example.com"]
    backup_start(wedding=wedding)
    run_workers()
    holders = set(Replica.objects.filter(status="verified").values_list("provider_id", flat=True))
    assert len(holders) == 2
    lost = Provider.objects.get(pk=min(holders))
    spare = next(p for p in folders if p.pk not in holders)

    unmounted = Path(lost.bucket).rename(Path(lost.bucket).with_name("unmounted"))
    Provider.objects.filter(pk=lost.pk).update(options={})  # a missing mount is not silently re-created
    for _ in range(3):
        health_check_all()
    lost.refresh_from_db()
    assert lost.status == Provider.Status.DOWN
    event = FailoverEvent.objects.get(provider=lost)
    assert event.affected_assets == 3 and event.affected_weddings == 1
    assert len(mailoutbox) == 1
    assert asset_gaps(wedding)  # the lost copies protect nobody today

    run_workers()
    failover_job = BackupJob.objects.get(kind=BackupJob.Kind.FAILOVER)
    assert failover_job.status == BackupJob.Status.SUCCEEDED, failover_job.error_summary
    assert asset_gaps(wedding) == {}
    temporaries = Replica.objects.filter(provider=spare, status="verified", temporary=True)
    assert temporaries.count() == 3

    unmounted.rename(lost.bucket)
    settings.WEDBACKUP_BREAKER_COOLDOWN = 0
    health_check_all()
    lost.refresh_from_db()
    assert lost.status == Provider.Status.ACTIVE
    event.refresh_from_db()
    assert event.resolved_at is not None
    assert event.redirected["to"] == {spare.name: {"assets": 3, "bytes": 3 * 5003, "temporary": 3}}
    run_workers()
    repair = BackupJob.objects.get(kind=BackupJob.Kind.REPAIR)
    assert repair.status == BackupJob.Status.SUCCEEDED, repair.error_summary

    repair_prune_temporaries(wedding=wedding)  # the engine's repair finisher should call this (see report)
    assert not Replica.objects.filter(provider=spare, status="verified").exists()
    assert not any(p.is_file() for p in (Path(spare.bucket) / "weddings").rglob("*.jpg"))
    assert asset_gaps(wedding) == {}
    assert set(Replica.objects.filter(status="verified").values_list("provider_id", flat=True)) == holders
