"""Cost moves, orphan cleanup, repair and verification at once on one wedding, on real worker processes and
real local storage (watched folders, SeaweedFS), round after round: every asset stays at policy and every copy the
database calls verified is really there."""

import datetime as dt
import hashlib
import uuid
from pathlib import Path

import pytest

from backups.ingest import wedding_import
from backups.models import BackupJob, BackupPolicy, Replica
from backups.planning import asset_gaps
from backups.restore import wedding_restore
from backups.tasks import backup_start, verify_start
from costs.models import Optimization
from costs.tasks import optimization_apply
from providers.localservers.seaweedfs import create_bucket, s3_client
from tests.factories import make_provider
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, ensure_running
from tests.integrations.test_faults import Workers, forget_worker_state

pytestmark = [pytest.mark.django_db(transaction=True)]
ROUNDS = 6


@pytest.fixture(params=["watched folders", "SeaweedFS"])
def fleet(request, tmp_path, settings, rq_queues):
    forget_worker_state()
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers = 2, 1  # three places of one vendor
    policy.save()
    if request.param == "SeaweedFS":
        server = request.getfixturevalue("seaweedfs")
        ensure_running(server)
        places = [make_provider(name=f"s3-{n}", kind="aws_s3", region="us-east-1",
                                bucket=create_bucket(server, f"wb-{uuid.uuid4().hex[:12]}"),
                                endpoint=server.extra["endpoint"],
                                credentials={"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY})
                  for n in "abc"]
        client = s3_client(server)
    else:
        places = [make_provider(name=f"nas-{n}", kind="watched_folder", region="us-east-1",
                                bucket=str(tmp_path / f"nas-{n}"), options={"create": True}) for n in "abc"]
        client = None
    workers = Workers(tmp_path, settings, WEDBACKUP_ORPHAN_MIN_AGE="0")  # every orphan old enough at once
    yield places, workers, client
    workers.stop_all()


def stored(replica: Replica, client) -> bytes | None:
    """The object as the provider holds it, read without WedBackup."""
    if client is None:
        path = Path(replica.provider.bucket) / replica.object_key
        return path.read_bytes() if path.exists() else None
    try:
        return client.get_object(Bucket=replica.provider.bucket, Key=replica.object_key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


def test_moves_cleanup_repair_and_verify_at_once_never_lose_a_copy(fleet, tmp_path, run_workers):
    folders, workers, client = fleet
    source = tmp_path / "source"
    (source / "ceremony").mkdir(parents=True)
    for n in range(60):
        (source / "ceremony" / f"IMG_{n:02}.jpg").write_bytes(b"\xff\xd8\xff" + bytes([n]) * 20_000)
    wedding = wedding_import(path=source, couple="Ana & Ben", date=dt.date(2026, 5, 2), country="US").wedding
    backup_start(wedding=wedding)
    run_workers()
    assert asset_gaps(wedding) == {}
    for round_no in range(ROUNDS):
        holders = set(Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED)
                      .values_list("provider_id", flat=True))
        src = next(p for p in folders if p.pk in holders)
        dst = next(p for p in folders if p.pk not in holders) if len(holders) < 3 else folders[(round_no + 1) % 3]
        opt = Optimization.objects.create(
            wedding=wedding, kind=Optimization.Kind.PROVIDER_MIX, summary=f"round {round_no}", current_monthly=1,
            new_monthly=1, changes=[{"action": "move", "provider": src.pk, "asset_kind": "photo",
                                     "to_provider": dst.pk, "to_class": ""}])
        optimization_apply(optimization=opt)
        verify_start(wedding=wedding)  # with orphan cleanup, racing the move's new copies
        backup_start(wedding=wedding, kind=BackupJob.Kind.REPAIR)
        procs = [workers.start(), workers.start()]
        for proc in procs:
            workers.wait(proc, timeout=120)
        assert asset_gaps(wedding) == {}, (round_no, workers.tail())
        for replica in Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED).select_related(
                "provider", "asset"):
            data = stored(replica, client)
            assert data is not None and hashlib.sha256(data).hexdigest() == replica.asset.sha256, (
                round_no, replica.provider.name, replica.object_key)
    verifies = BackupJob.objects.filter(wedding=wedding, kind=BackupJob.Kind.VERIFY)
    assert [j.error_summary for j in verifies if j.status != BackupJob.Status.SUCCEEDED] == []  # no false damage
    assert set(Optimization.objects.values_list("status", flat=True)) == {Optimization.Status.APPLIED}
    report = wedding_restore(wedding=wedding, to=tmp_path / "restored")
    assert report.failed == {} and len(report.restored) == 60
    for asset in wedding.assets.all():
        assert (tmp_path / "restored" / asset.relative_path).read_bytes() == (source / asset.relative_path).read_bytes()
