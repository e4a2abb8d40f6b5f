"""A provider that goes down mid-round is routed around by the very next batch, not after the whole round."""

import datetime as dt

import pytest

from backups.backup import backup_start
from backups.ingest import wedding_import
from backups.models import BackupJob, Replica
from providers.failover import provider_mark_down
from providers.models import Provider
from tests.factories import make_provider

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_next_batch_puts_a_down_providers_copies_on_a_spare(tmp_path, run_workers, three_folder_providers):
    make_provider(name="folder-3", kind="watched_folder", region="us-east-1", bucket=str(tmp_path / "t3"),
                  options={"create": True})
    src = tmp_path / "wedding"
    src.mkdir()
    for i in range(3):
        (src / f"IMG_{i}.jpg").write_bytes(b"\xff\xd8\xff" + bytes([i]) * 2000)
    wedding = wedding_import(path=src, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding
    job = backup_start(wedding=wedding)
    run_workers(max_jobs=1)  # the round: plans 3 copies per file and queues one batch and the finisher
    planned = set(Replica.objects.filter(status=Replica.Status.PLANNED).values_list("provider_id", flat=True))
    assert len(planned) == 3
    victim = Provider.objects.get(pk=min(planned))
    [spare] = set(Provider.objects.values_list("pk", flat=True)) - planned
    provider_mark_down(provider=victim, by="ops", reason="vendor incident")

    run_workers(max_jobs=1)  # the batch, before the round's finisher has run
    assert Replica.objects.filter(provider_id=spare, status=Replica.Status.VERIFIED).count() == 3
    assert not Replica.objects.filter(provider=victim, status=Replica.Status.VERIFIED).exists()
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    assert job.params["round"] == 1  # no second round was needed
    assert job.bytes_done <= job.bytes_planned


def test_a_healthy_batch_plans_nothing_again(tmp_path, run_workers, three_folder_providers):
    src = tmp_path / "wedding"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"\xff\xd8\xff" + b"a" * 100)
    wedding = wedding_import(path=src, couple="Cleo & Dan", date=dt.date(2024, 6, 1), country="US").wedding
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED
    assert job.bytes_planned == job.bytes_done == 3 * (3 + 100)
