"""Backups on a bad day: real servers, real RQ workers, faults injected by tests/faults/proxy.py.

Every test ends the same way: every asset at policy, and no replica marked verified whose bytes on the
server (read with the provider's own SDK, not through WedBackup) differ from the asset's sha256.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.db import connection
from django.utils import timezone

from backups import batches
from backups.ingest import wedding_import
from backups.layout import object_key, wedding_prefix
from backups.models import BackupJob, Replica, Wedding
from backups.planning import asset_gaps
from backups.tasks import backup_start
from backups.verify import wedding_verify
from providers.breaker import DEFAULT_PREFIX
from providers.localservers.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from providers.localservers.base import free_port, wait_for_port
from providers.localservers.gcs_emulator import gcs_client
from providers.localservers.seaweedfs import s3_client
from providers.models import FailoverEvent, Provider
from tests.faults.proxy import FaultProxy
from tests.fixtures.azure import azure_service
from tests.weddings import wedding_folder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.servers]

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


# -- helpers ------------------------------------------------------------------------------------------
def import_wedding(tmp_path: Path, **folder: int) -> Wedding:
    source = wedding_folder(tmp_path / f"source-{uuid.uuid4().hex[:6]}", **folder)
    report = wedding_import(path=source, couple="Ines & Tom", date=dt.date(2026, 5, 2), country="US")
    assert report.problems == []
    return report.wedding


def stored_bytes(replica: Replica, servers: dict) -> bytes | None:
    """The replica's object read straight from the server with the provider's SDK (None when absent)."""
    p, key = replica.provider, replica.object_key
    try:
        if p.kind == "aws_s3":
            return s3_client(servers["seaweedfs"]).get_object(Bucket=p.bucket, Key=key)["Body"].read()
        if p.kind == "gcs":
            return gcs_client(servers["gcs"]).bucket(p.bucket).blob(key).download_as_bytes()
        return azure_service(servers["azurite"]).get_container_client(p.bucket).download_blob(key).readall()
    except Exception as exc:
        if "NoSuchKey" in repr(exc) or "404" in str(exc) or "BlobNotFound" in str(exc):
            return None
        raise


def assert_at_policy_and_honestly_verified(wedding: Wedding, servers: dict) -> int:
    """Every asset at policy; every verified replica's stored bytes hash to the asset's sha256."""
    assert asset_gaps(wedding) == {}
    wrong = []
    verified = Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED).select_related(
        "provider", "asset")
    for r in verified:
        data = stored_bytes(r, servers)
        digest = hashlib.sha256(data).hexdigest() if data is not None else "missing"
        if digest != r.asset.sha256 or r.sha256 != r.asset.sha256:
            wrong.append((r.provider.name, r.object_key, digest))
    assert wrong == [], f"replicas marked verified whose stored bytes differ: {wrong}"
    return verified.count()


def s3_keys(server, bucket: str, prefix: str) -> list[str]:
    resp = s3_client(server).list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(0.05)


@pytest.fixture
def servers(seaweedfs, gcs_emulator, azurite) -> dict:
    return {"seaweedfs": seaweedfs, "gcs": gcs_emulator, "azurite": azurite}


@pytest.fixture
def s3_proxy(cloud_providers, seaweedfs) -> Iterator[FaultProxy]:
    """The S3 provider's endpoint points at a fault proxy in front of SeaweedFS (no faults until set)."""
    with FaultProxy(seaweedfs.port, seed=20260502) as proxy:
        # `updated` too: backends are cached per (provider, updated) in each process.
        Provider.objects.filter(pk=cloud_providers["s3"].pk).update(endpoint=proxy.url, updated=timezone.now())
        yield proxy


@pytest.fixture
def fleet(cloud_providers, azurite) -> dict:
    """The three clouds plus a second Azure region, so losing S3 still leaves three providers."""
    container = f"wb-{uuid.uuid4().hex[:16]}"
    azure_service(azurite).create_container(container)
    cloud_providers["azure_west"] = Provider.objects.create(
        name="azure-west-us", kind="azure_blob", region="westus", bucket=container,
        endpoint=azurite.extra["endpoint"],
        credentials={"account_name": DEV_ACCOUNT_NAME, "account_key": DEV_ACCOUNT_KEY})
    return cloud_providers


def descendants(pid: int) -> list[int]:
    """Child processes, grandchildren first (from /proc, Linux)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                out = [*descendants(int(child)), int(child), *out]
    return out


class Workers:
    """`manage.py rqworker --burst` subprocesses on the test's database and Redis; kill -9 by process group."""

    def __init__(self, tmp_path: Path, settings, **env: str):
        db = connection.settings_dict
        self.env = {
            **os.environ, "DJANGO_SETTINGS_MODULE": "wedbackup.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": settings.RQ_QUEUES["default"]["URL"], "WEDBACKUP_PART_SIZE": str(settings.WEDBACKUP_PART_SIZE),
            **env,
        }
        self.queues = list(settings.QUEUE_NAMES)
        self.log = tmp_path / "workers.log"
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        with open(self.log, "ab") as log:
            proc = subprocess.Popen([sys.executable, "manage.py", "rqworker", *self.queues, "--burst"], cwd=ROOT,
                                    env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """kill -9 of the worker and its work-horse. rq 3.0 starts the horse in a session of its own
        (os.setsid), so killing the worker's process group alone would leave the horse uploading."""
        for pid in [*descendants(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def wait(self, proc: subprocess.Popen, timeout: float) -> None:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            raise AssertionError(f"the worker did not finish within {timeout}s; log:\n{self.tail()}") from None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)


def forget_worker_state() -> None:
    """Breakers (kept by the subprocesses under the default prefix) and upload slots a killed worker held.

    Provider ids restart at 1 in every test, so what one test's killed worker left in Redis would
    otherwise throttle the next test; within a test it stays, which is what the tests look at."""
    import django_rq

    conn = django_rq.get_connection("default")
    for key in [*conn.scan_iter(f"{DEFAULT_PREFIX}:*"), *conn.scan_iter("wedbackup:slots:provider:*")]:
        conn.delete(key)


@pytest.fixture
def workers(tmp_path, settings, rq_queues, cloud_providers) -> Iterator[Workers]:
    forget_worker_state()
    w = Workers(tmp_path, settings)
    yield w
    w.stop_all()
    expire_abandoned_jobs(settings)  # rq_queues cannot empty a StartedJobRegistry in rq 3.0 (remove() raises)
    forget_worker_state()


def expire_abandoned_jobs(settings, after: float = 300) -> int:
    """What rq 3.0's worker maintenance does once a dead worker's heartbeat TTL (job_monitoring_interval + 60 s)
    has run out: StartedJobRegistry.cleanup moves the abandoned job to the failed registry and enqueues its
    dependents. Called with the clock moved ``after`` seconds on, so the test need not wait for the TTL."""
    import django_rq
    from rq.registry import StartedJobRegistry

    moved = 0
    for name in settings.QUEUE_NAMES:
        registry = StartedJobRegistry(queue=django_rq.get_queue(name))
        moved += len(registry.get_expired_job_ids(time.time() + after))
        registry.cleanup(timestamp=time.time() + after)
    return moved


def s3_replicas(wedding: Wedding, s3: Provider):
    return Replica.objects.filter(asset__wedding=wedding, provider=s3).select_related("asset")


# -- transient failures and corruption in transit -----------------------------------------------------
def test_twenty_percent_transient_failures_on_s3_still_end_at_policy(tmp_path, s3_proxy, cloud_providers, servers,
                                                                      run_workers):
    # 60 photos: one request per verified put (no HEAD after it), enough draws for every kind of fault.
    wedding = import_wedding(tmp_path, photos=60, video_bytes=6 * MIB)  # the video goes multipart to S3
    s3_proxy.set(error_rate=0.2)

    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()

    assert s3_proxy.stats.errors >= 5, s3_proxy.stats.errors  # 500s, 503s and SlowDowns really happened
    assert {e.fault for e in s3_proxy.stats.exchanges} >= {"error:500", "error:503", "slowdown"}
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    assert assert_at_policy_and_honestly_verified(wedding, servers) >= 3 * wedding.assets.count()
    assert all(r.status == Replica.Status.VERIFIED for r in s3_replicas(wedding, cloud_providers["s3"]))


def test_a_byte_flipped_in_transit_is_detected_retried_and_never_accepted(tmp_path, s3_proxy, cloud_providers,
                                                                          servers, run_workers):
    wedding = import_wedding(tmp_path, photos=4, video_bytes=200_000)
    s3_proxy.set(flip_rate=1.0, flip_max=3, match=lambda method, path: method == "PUT")

    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()

    flipped = [e for e in s3_proxy.stats.exchanges if e.fault == "flip"]
    assert len(flipped) == 3
    # The server refused every corrupted body (BadDigest/InvalidDigest): nothing corrupt was ever stored.
    assert all(e.status is not None and 400 <= e.status < 500 for e in flipped), [(e.path, e.status) for e in flipped]
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    assert assert_at_policy_and_honestly_verified(wedding, servers) >= 3 * wedding.assets.count()
    # ...and the same keys were then written again, intact.
    s3 = cloud_providers["s3"]
    verified = {r.object_key for r in s3_replicas(wedding, s3) if r.status == Replica.Status.VERIFIED}
    for e in flipped:
        assert unquote(e.path.split("?")[0]).split(f"/{s3.bucket}/", 1)[1] in verified


# -- a worker killed mid-job --------------------------------------------------------------------------
def test_a_worker_killed_mid_upload_body_leaves_nothing_verified_and_a_new_worker_finishes(
    tmp_path, s3_proxy, cloud_providers, servers, workers, settings
):
    wedding = import_wedding(tmp_path, photos=3, video_bytes=11 * MIB)  # 3 parts of <= 5 MiB on S3
    video = wedding.assets.get(kind="video")
    s3 = cloud_providers["s3"]
    s3_proxy.set(upload_bps=4 * MIB, match=lambda method, path: method == "PUT")
    # One S3 slot, so the upload the kill interrupts holds the provider's only slot.
    workers.env["WEDBACKUP_PROVIDER_CONCURRENCY"] = "1"
    workers.env["WEDBACKUP_SLOT_LEASE"] = "5"

    job = backup_start(wedding=wedding)
    first = workers.start()
    s3_proxy.wait_for(lambda s: s.bodies_in_flight > 0 and any("partNumber=2" in e.path for e in s.exchanges),
                      timeout=40)
    workers.kill(first)  # mid-body of part 2 of the video

    video_s3 = Replica.objects.get(asset=video, provider=s3)
    assert video_s3.status in (Replica.Status.UPLOADING, Replica.Status.PLANNED)
    assert stored_bytes(video_s3, servers) is None  # a multipart upload never completed: no object
    assert BackupJob.objects.get(pk=job.pk).status == BackupJob.Status.RUNNING

    s3_proxy.clear()
    assert expire_abandoned_jobs(settings) >= 1
    workers.wait(workers.start(), timeout=45)

    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, (job.error_summary, workers.tail())
    assert assert_at_policy_and_honestly_verified(wedding, servers) >= 3 * wedding.assets.count()
    keys = s3_keys(servers["seaweedfs"], s3.bucket, wedding_prefix(wedding))
    assert keys == sorted([*(object_key(a) for a in wedding.assets.all()), f"{wedding_prefix(wedding)}MANIFEST.json"])
    report = wedding_verify(wedding=wedding)
    assert report.orphans == [] and report.mismatched == [] and report.unreachable == []


def test_a_worker_killed_between_upload_and_database_write_leaves_no_duplicate_or_orphan(
    tmp_path, s3_proxy, cloud_providers, servers, workers, settings
):
    wedding = import_wedding(tmp_path, photos=4, video_bytes=200_000)
    s3 = cloud_providers["s3"]
    # The server stores each PUT, then the proxy holds its answer: the worker never hears it succeeded.
    s3_proxy.set(hold_response=30, match=lambda method, path: method == "PUT")
    workers.env["WEDBACKUP_PROVIDER_CONCURRENCY"] = "2"
    workers.env["WEDBACKUP_SLOT_LEASE"] = "5"

    job = backup_start(wedding=wedding)
    first = workers.start()
    s3_proxy.wait_for(lambda s: s.held >= 2, timeout=40)
    workers.kill(first)

    held_keys = [r.object_key for r in s3_replicas(wedding, s3) if r.status != Replica.Status.VERIFIED
                 and stored_bytes(r, servers) is not None]
    assert len(held_keys) >= 2  # uploaded, but the database never recorded it
    assert not Replica.objects.filter(object_key__in=held_keys, provider=s3, status=Replica.Status.VERIFIED).exists()

    s3_proxy.clear()
    assert expire_abandoned_jobs(settings) >= 1
    workers.wait(workers.start(), timeout=45)

    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, (job.error_summary, workers.tail())
    assert assert_at_policy_and_honestly_verified(wedding, servers) >= 3 * wedding.assets.count()
    prefix = wedding_prefix(wedding)
    expected = sorted([*(object_key(a) for a in wedding.assets.all()), f"{prefix}MANIFEST.json"])
    assert s3_keys(servers["seaweedfs"], s3.bucket, prefix) == expected  # one object per asset, no duplicates
    report = wedding_verify(wedding=wedding)
    assert report.orphans == [] and report.mismatched == []

    # An object no replica accounts for (what an older crash or a renamed file leaves) is found and removed.
    settings.WEDBACKUP_ORPHAN_MIN_AGE = 0  # this orphan is made below; in service one must be a day old
    stray = f"{prefix}photo/ceremony/IMG_9999.jpg"
    s3_client(servers["seaweedfs"]).put_object(Bucket=s3.bucket, Key=stray, Body=b"left behind")
    report = wedding_verify(wedding=wedding)
    assert report.orphans == [f"{s3.name}: {stray}"] and report.orphans_deleted == 1
    assert s3_keys(servers["seaweedfs"], s3.bucket, prefix) == expected


def test_a_worker_killed_in_the_finisher_still_lets_the_job_finish(
    tmp_path, s3_proxy, cloud_providers, servers, workers, settings
):
    """The finisher writes the manifests; a kill there abandons the one job that would end the BackupJob."""
    wedding = import_wedding(tmp_path, photos=2, video_bytes=100_000)
    s3_proxy.set(hold_response=30, match=lambda method, path: method == "PUT" and "MANIFEST.json" in path)
    workers.env["WEDBACKUP_SLOT_LEASE"] = "5"

    job = backup_start(wedding=wedding)
    first = workers.start()
    s3_proxy.wait_for(lambda s: s.held >= 1, timeout=40)  # every upload verified; the manifest is on its way
    workers.kill(first)
    assert asset_gaps(wedding) == {}
    assert BackupJob.objects.get(pk=job.pk).status == BackupJob.Status.RUNNING

    s3_proxy.clear()
    assert expire_abandoned_jobs(settings) >= 1
    workers.wait(workers.start(), timeout=45)

    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, ("the BackupJob was left running: nothing re-ran its finisher",
                                                      job.status, workers.tail())
    assert assert_at_policy_and_honestly_verified(wedding, servers) >= 3 * wedding.assets.count()
    prefix = wedding_prefix(wedding)
    assert f"{prefix}MANIFEST.json" in s3_keys(servers["seaweedfs"], cloud_providers["s3"].bucket, prefix)


# -- Redis restarted mid-job --------------------------------------------------------------------------
class Redis:
    """A redis-server of the test's own on a free port, persisting every write (AOF), killable and restartable."""

    def __init__(self, workdir: Path):
        self.port, self.workdir = free_port(), workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(self.port, timeout=20, proc=self.proc)
        import redis

        wait_until(lambda: self._ping(redis), 20, "redis did not load its data")

    def _ping(self, redis) -> bool:
        try:
            return bool(redis.Redis(port=self.port).ping())
        except redis.exceptions.BusyLoadingError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path, settings) -> Iterator[Redis]:
    server = Redis(tmp_path / "redis")
    server.start()
    before = settings.REDIS_URL, settings.RQ_QUEUES
    settings.REDIS_URL = server.url
    settings.RQ_QUEUES = {name: {**cfg, "URL": server.url} for name, cfg in settings.RQ_QUEUES.items()}
    yield server
    settings.REDIS_URL, settings.RQ_QUEUES = before  # other fixtures' teardown still talks to Redis
    server.kill()


def test_redis_restarted_mid_job_the_abandoned_work_is_recovered_and_finishes(
    tmp_path, own_redis, s3_proxy, cloud_providers, servers, settings
):
    import django_rq

    assert django_rq.get_connection("default").connection_pool.connection_kwargs["port"] == own_redis.port
    workers = Workers(tmp_path, settings, WEDBACKUP_SLOT_LEASE="5")
    try:
        wedding = import_wedding(tmp_path, photos=6, video_bytes=3 * MIB)
        s3_proxy.set(upload_bps=2 * MIB, match=lambda method, path: method == "PUT")
        job = backup_start(wedding=wedding)
        first = workers.start()
        s3_proxy.wait_for(lambda s: s.bodies_in_flight > 0 and any(e.body_bytes > MIB for e in s.exchanges),
                          timeout=40)
        own_redis.kill()  # mid-upload: the worker loses its queues, registries, slots and breakers
        time.sleep(0.5)  # an outage, however short, not a wait for anything
        own_redis.start()
        s3_proxy.clear()
        try:
            first.wait(timeout=40)
        except subprocess.TimeoutExpired:
            workers.kill(first)
        job.refresh_from_db()
        if job.status != BackupJob.Status.SUCCEEDED:
            expire_abandoned_jobs(settings)
            workers.wait(workers.start(), timeout=45)
        job.refresh_from_db()
        assert job.status == BackupJob.Status.SUCCEEDED, (job.status, job.error_summary, workers.tail())
        assert assert_at_policy_and_honestly_verified(wedding, servers) >= 3 * wedding.assets.count()
        assert wedding_verify(wedding=wedding).orphans == []
    finally:
        workers.stop_all()


# -- credentials revoked mid-job ----------------------------------------------------------------------
def test_revoked_credentials_mid_job_fail_permanently_reroute_and_raise_one_event(
    tmp_path, fleet, servers, run_workers, settings, monkeypatch
):
    settings.WEDBACKUP_BREAKER_FAILURES = 2
    monkeypatch.setattr(batches, "BATCH_SIZE", 2)
    wedding = import_wedding(tmp_path, photos=6, video_bytes=200_000)
    s3 = fleet["s3"]

    job = backup_start(wedding=wedding)
    run_workers(max_jobs=2)  # the round and the first batch go through...
    assert s3_replicas(wedding, s3).filter(status=Replica.Status.VERIFIED).exists()
    s3.refresh_from_db()
    s3.credentials = {**s3.credentials, "secret_access_key": "revoked-secret-0000"}  # ...then the key is revoked
    s3.save()
    run_workers()
    job.refresh_from_db()

    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    assert assert_at_policy_and_honestly_verified(wedding, servers) > 0
    refused = s3_replicas(wedding, s3).exclude(status=Replica.Status.VERIFIED)
    assert refused.exists()
    for r in refused:  # a permanent error with a reason staff can act on, and the secret nowhere
        assert r.status == Replica.Status.FAILED, (r.status, r.last_error)
        assert r.permanent_failure or r.last_error == "provider down: redirected", r.last_error
    reasons = [r.last_error for r in refused if r.permanent_failure]
    assert reasons and all("check the access key" in e for e in reasons)
    for r in refused:  # rerouted: each of these assets is at policy on the other providers
        others = Replica.objects.filter(asset=r.asset, status=Replica.Status.VERIFIED).exclude(provider=s3)
        assert others.count() >= 3
    events = FailoverEvent.objects.filter(provider=s3)
    assert events.count() == 1, list(events.values("reason"))
    assert "check the access key" in events.get().reason
    texts = [events.get().reason, job.error_summary, *Replica.objects.values_list("last_error", flat=True)]
    assert not any("revoked-secret" in t for t in texts)
