"""A provider that goes down mid-round is routed around by the very next batch, not after the whole round."""

import datetime as dt

import pytest
from django.db import connections

from backups import batches
from backups.batches import batched
from backups.failover import provider_mark_down
from backups.ingest import wedding_import
from backups.models import BackupJob, Replica
from backups.planning import plan_round
from backups.tasks import backup_start, upload_batch
from providers.backends.watched_folder import WatchedFolderBackend
from providers.models import Provider
from tests.factories import make_provider

pytestmark = pytest.mark.django_db(transaction=True)


def spare_and_wedding(tmp_path, *, photos: int):
    """A fourth folder provider (the spare) and an imported wedding of small photos."""
    spare = make_provider(name="folder-3", kind="watched_folder", region="us-east-1", bucket=str(tmp_path / "t3"),
                          options={"create": True})
    src = tmp_path / "wedding"
    src.mkdir()
    for i in range(photos):
        (src / f"IMG_{i}.jpg").write_bytes(b"\xff\xd8\xff" + bytes([i]) * 2000)
    return spare, wedding_import(path=src, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding


def test_the_next_batch_puts_a_down_providers_copies_on_a_spare(tmp_path, run_workers, three_folder_providers):
    _, wedding = spare_and_wedding(tmp_path, photos=3)
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


def test_batches_are_bounded_by_count_and_bytes_in_order():
    assets = [(1, 10), (2, 10), (3, 10), (4, 500), (5, 10), (6, 10)]
    assert batched(assets, count=2, size=1000) == [[1, 2], [3, 4], [5, 6]]
    assert batched(assets, count=10, size=30) == [[1, 2, 3], [4], [5, 6]]  # a big one goes alone
    assert batched(assets, count=10, size=1000) == [[1, 2, 3, 4, 5, 6]]
    assert batched([], count=2, size=10) == []


def test_a_provider_marked_down_mid_batch_is_routed_around_by_the_rest_of_that_batch(
        tmp_path, three_folder_providers, monkeypatch, settings):
    monkeypatch.setattr(batches, "OUTAGE_CHECK_SECONDS", 0.0)
    settings.WEDBACKUP_ASSET_THREADS = 1  # one asset after the other: "the rest" is well defined
    spare, wedding = spare_and_wedding(tmp_path, photos=6)
    job = BackupJob.objects.create(wedding=wedding, queue="default")
    plan_round(job)
    planned = set(Replica.objects.filter(status=Replica.Status.PLANNED).values_list("provider_id", flat=True))
    assert spare.pk not in planned
    victim = Provider.objects.get(pk=min(planned))
    real_put, puts = WatchedFolderBackend.put, []

    def put(self, key, *args, **kwargs):
        puts.append((self.config.name, key))
        if self.config.name == victim.name and len([n for n, _ in puts if n == victim.name]) == 2:
            provider_mark_down(provider=victim, by="ops", reason="vendor incident")  # during its 2nd upload
            connections.close_all()  # this upload thread's connection (uploads themselves never open one)
        return real_put(self, key, *args, **kwargs)

    monkeypatch.setattr(WatchedFolderBackend, "put", put)
    replans, real_plan = [], batches.plan_assets
    monkeypatch.setattr(batches, "plan_assets", lambda job, assets: (replans.append(len(assets)),
                                                                     real_plan(job, assets))[1])
    ids = list(wedding.assets.order_by("pk").values_list("pk", flat=True))
    upload_batch(job.pk, ids)  # one batch, one call: no second round
    assert len(replans) == 1  # the batch is planned again once for the outage, not asset by asset
    on_victim = Replica.objects.filter(provider=victim, status=Replica.Status.VERIFIED).count()
    on_spare = Replica.objects.filter(provider=spare, status=Replica.Status.VERIFIED).count()
    assert on_victim == 2  # the first asset, and the upload that was running when it went down
    assert on_spare == 4  # every later asset of the same batch
    assert [n for n, _ in puts].count(victim.name) == 2
    for asset_id in ids:
        assert Replica.objects.filter(asset_id=asset_id, status=Replica.Status.VERIFIED).count() >= 3
