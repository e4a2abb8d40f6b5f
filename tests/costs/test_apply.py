"""Applying proposals with real RQ workers on watched-folder backends: copy, verify, then delete; refusals
that keep the policy; idempotence; and the result recorded on the Optimization and its BackupJob."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from backups.ingest import wedding_import
from backups.models import BackupJob, BackupPolicy, Replica
from backups.planning import asset_gaps
from backups.tasks import backup_start
from costs.apply import optimization_step
from costs.models import Optimization
from costs.tasks import optimization_apply, optimizations_apply_all
from tests.factories import make_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(tmp_path, run_workers):
    """A wedding backed up on folder-0 and folder-1; folder-2 (empty) came later."""
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers = 2, 1
    policy.save()
    folders = [make_provider(name=f"folder-{i}", kind="watched_folder", region="us-east-1",
                             bucket=str(tmp_path / f"target-{i}"), options={"create": True}, enabled=i < 2)
               for i in range(3)]
    src = tmp_path / "wedding"
    (src / "ceremony").mkdir(parents=True)
    (src / "ceremony" / "a.jpg").write_bytes(b"\xff\xd8" + b"a" * 5000)
    (src / "ceremony" / "b.jpg").write_bytes(b"\xff\xd8" + b"b" * 7000)
    wedding = wedding_import(path=src, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding
    backup_start(wedding=wedding)
    run_workers()
    assert asset_gaps(wedding) == {}
    folders[2].enabled = True
    folders[2].save()
    return wedding, folders, src


def proposal(wedding, kind="provider_mix", **change) -> Optimization:
    values = {"action": "move", "provider": None, "to_provider": None, "from_class": "", "to_class": "",
              "asset_kind": "photo", "band": 2, "min_size": 0, "max_size": None, "objects": 2, "bytes": 12004}
    values.update(change)
    return Optimization.objects.create(wedding=wedding, kind=kind, summary="test", changes=[values],
                                       current_monthly=Decimal("1"), new_monthly=Decimal("0.5"))


def test_a_move_copies_verifies_then_deletes_streaming_from_a_replica(setup, run_workers, staff_user):
    wedding, folders, src = setup
    shutil.rmtree(src)  # the source folder is gone: the copy must come from an existing replica
    opt = proposal(wedding, provider=folders[0].pk, to_provider=folders[2].pk)
    seen = []
    optimization_step.connect(lambda sender, **kw: seen.append(asset_gaps(wedding)), weak=False,
                              dispatch_uid="test-move")
    try:
        job = optimization_apply(optimization=opt, by=staff_user)
        assert job.kind == BackupJob.Kind.OPTIMISE and job.queue == "bulk"
        opt.refresh_from_db()
        assert opt.status == Optimization.Status.APPLYING and opt.applied_by == staff_user
        run_workers()
    finally:
        optimization_step.disconnect(dispatch_uid="test-move")
    assert seen == [{}, {}]
    opt.refresh_from_db()
    job.refresh_from_db()
    assert opt.status == Optimization.Status.APPLIED, opt.error
    assert job.status == BackupJob.Status.SUCCEEDED and job.files_done == 2 and job.bytes_done == 12004
    for asset in wedding.assets.all():
        old = Replica.objects.get(asset=asset, provider=folders[0])
        new = Replica.objects.get(asset=asset, provider=folders[2])
        assert old.status == Replica.Status.DELETED and new.status == Replica.Status.VERIFIED
        assert not (Path(folders[0].bucket) / old.object_key).exists()
        assert (Path(folders[2].bucket) / new.object_key).read_bytes()[:2] == b"\xff\xd8"
        assert new.sha256 == asset.sha256


def test_applying_again_does_nothing(setup, run_workers):
    wedding, folders, _ = setup
    opt = proposal(wedding, provider=folders[0].pk, to_provider=folders[2].pk)
    optimization_apply(optimization=opt)
    run_workers()
    state = sorted(Replica.objects.values_list("pk", "status", "updated"))
    assert optimization_apply(optimization=opt) is None
    assert optimizations_apply_all() == []
    run_workers()
    assert sorted(Replica.objects.values_list("pk", "status", "updated")) == state
    assert BackupJob.objects.filter(kind=BackupJob.Kind.OPTIMISE).count() == 1


def test_a_move_that_would_break_residency_never_copies_a_byte(setup, run_workers):
    wedding, folders, _ = setup
    eu = make_provider(name="folder-eu", kind="watched_folder", region="eu-west-1",
                       bucket=str(Path(folders[0].bucket).parent / "target-eu"), options={"create": True})
    wedding.residency_zone = "US"
    wedding.save()
    opt = proposal(wedding, provider=folders[0].pk, to_provider=eu.pk)
    optimization_apply(optimization=opt)
    run_workers()
    opt.refresh_from_db()
    assert opt.status == Optimization.Status.FAILED and "outside US residency" in opt.error
    assert not Replica.objects.filter(provider=eu).exists()
    assert not Path(eu.bucket).exists() or not any(Path(eu.bucket).rglob("*.jpg"))
    assert asset_gaps(wedding) == {}


def test_a_class_change_the_backend_cannot_do_is_recorded_not_faked(setup, run_workers):
    wedding, folders, _ = setup
    opt = proposal(wedding, kind="lifecycle", action="change_class", provider=folders[0].pk, to_class="COLD")
    optimization_apply(optimization=opt)
    run_workers()
    opt.refresh_from_db()
    assert opt.status == Optimization.Status.FAILED and "cannot change storage class" in opt.error
    assert opt.job.status == BackupJob.Status.FAILED
    assert set(Replica.objects.filter(provider=folders[0]).values_list("storage_class", flat=True)) == {""}


def test_advisory_kinds_are_not_applied(setup):
    wedding, _, _ = setup
    opt = proposal(wedding, kind="compression", action="compress")
    assert optimization_apply(optimization=opt) is None
    opt.refresh_from_db()
    assert opt.status == Optimization.Status.PROPOSED and "advisory" in opt.error
    assert not BackupJob.objects.filter(kind=BackupJob.Kind.OPTIMISE).exists()


def test_apply_all_enqueues_every_open_appliable_proposal(setup, run_workers):
    wedding, folders, _ = setup
    proposal(wedding, provider=folders[0].pk, to_provider=folders[2].pk)
    proposal(wedding, kind="dedup", action="dedup")
    jobs = optimizations_apply_all()
    assert len(jobs) == 1
    run_workers()
    assert Optimization.objects.get(kind="provider_mix").status == Optimization.Status.APPLIED


def test_a_run_whose_worker_died_can_be_started_again_but_not_a_queued_one(setup, run_workers):
    wedding, folders, _ = setup
    opt = proposal(wedding, provider=folders[0].pk, to_provider=folders[2].pk)
    first = optimization_apply(optimization=opt)
    assert optimization_apply(optimization=opt) is None  # queued: not twice
    BackupJob.objects.filter(pk=first.pk).update(status=BackupJob.Status.FAILED)  # as if the worker was killed
    second = optimization_apply(optimization=opt)
    assert second is not None and second.pk != first.pk
    run_workers()
    opt.refresh_from_db()
    assert opt.status == Optimization.Status.APPLIED and opt.job_id == second.pk
    first.refresh_from_db()
    assert first.status == BackupJob.Status.CANCELLED and first.files_planned == 0  # the stale job stood down
