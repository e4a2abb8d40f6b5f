"""A batch keeps the provider slots it took from one file to the next and reads the breakers at most once a
second: a file costs no Redis round trip, and every slot is back in Redis when the batch ends."""

import datetime as dt

import pytest

from backups import limits, uploads
from backups.ingest import wedding_import
from backups.models import BackupJob, Replica
from backups.tasks import backup_start
from providers import breaker

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_takes_a_few_slots_for_many_files_and_gives_them_all_back(
        tmp_path, run_workers, three_folder_providers, monkeypatch, settings):
    src = tmp_path / "wedding"
    src.mkdir()
    for i in range(40):
        (src / f"IMG_{i}.jpg").write_bytes(b"\xff\xd8\xff" + bytes([i]) * 3000)
    wedding = wedding_import(path=src, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding
    job = backup_start(wedding=wedding)
    run_workers(max_jobs=1)  # the round: plans 3 copies per file and queues the batch
    assert Replica.objects.filter(status=Replica.Status.PLANNED).count() == 120

    taken, breaker_reads = [], []
    real_acquire, real_get = limits._try_acquire, breaker.BreakerStore.get

    def acquire(*args):
        ok = real_acquire(*args)
        if ok:
            taken.append(args[1])
        return ok

    def get(self, provider_id):
        breaker_reads.append(provider_id)
        return real_get(self, provider_id)

    monkeypatch.setattr(limits, "_try_acquire", acquire)
    monkeypatch.setattr(breaker.BreakerStore, "get", get)
    settings.WEDBACKUP_SLOT_IDLE = 30  # none is given back for idling on a slow machine: the count is exact
    run_workers()

    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    assert Replica.objects.filter(status=Replica.Status.VERIFIED).count() == 120
    per_provider = {pid: taken.count(pid) for pid in set(taken)}
    assert len(per_provider) == 3
    # At most one slot per asset thread and provider (small files: each thread puts to its targets in turn).
    assert all(n <= settings.WEDBACKUP_ASSET_THREADS for n in per_provider.values()), per_provider
    assert len(breaker_reads) < 120 / 2, breaker_reads  # read per batch (once a second at most), not per put
    assert all(limits.slots_in_use(pid) == 0 for pid in per_provider)
    assert not limits._held


def test_alone_an_upload_still_takes_its_own_slot_and_reads_its_breaker(
        tmp_path, run_workers, three_folder_providers, monkeypatch):
    src = tmp_path / "wedding"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"\xff\xd8\xff" + b"a" * 100)
    wedding = wedding_import(path=src, couple="Cleo & Dan", date=dt.date(2024, 6, 1), country="US").wedding
    backup_start(wedding=wedding)
    run_workers(max_jobs=1)
    closed, opened = Replica.objects.filter(status=Replica.Status.PLANNED).order_by("pk")[:2]
    for _ in range(10):
        breaker.breaker_store().record(opened.provider_id, False, "boom")
    assert not breaker.breaker_allows(opened.provider_id)
    taken = []
    real_acquire = limits._try_acquire
    monkeypatch.setattr(limits, "_try_acquire", lambda *a: taken.append(a[1]) or real_acquire(*a))

    assert not uploads.replica_upload(opened)
    opened.refresh_from_db()
    assert opened.last_error == Replica.REDIRECTED
    assert uploads.replica_upload(closed)
    assert taken == [closed.provider_id]
    assert limits.slots_in_use(closed.provider_id) == 0
