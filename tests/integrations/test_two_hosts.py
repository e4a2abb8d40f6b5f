"""Workers on several machines: two hosts share PostgreSQL, Redis and the clouds; one loses power mid-backup.

rq's own mechanism finds the abandoned job (its started-registry entry is no longer renewed by a heartbeat,
and a live worker's maintenance re-queues it through the job's Retry); the thresholds are the project's
(``WEDBACKUP_WORKER_*``, ``wedbackup.worker``), and the backup test runs with their production defaults, so the
times it prints are what an operator gets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import django_rq
import pytest
from django.utils import timezone
from rq import Retry
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from backups.ingest import wedding_import
from backups.models import BackupJob, Replica, Wedding
from backups.planning import asset_gaps
from backups.tasks import ABANDONED_RETRIES, backup_start
from providers.localservers.gcs_emulator import gcs_client
from providers.localservers.seaweedfs import s3_client
from providers.models import Provider
from tests.faults.proxy import FaultProxy
from tests.fixtures.azure import azure_service
from tests.integrations.hosts import Host, forget_worker_state, parent_pid, session_pids, shared_env, wait_until
from tests.weddings import jpeg

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.servers]

KIB = 1024
QUEUES = ["critical", "default", "bulk"]


@pytest.fixture
def hosts(tmp_path, rq_queues) -> Iterator[list[Host]]:
    """Hosts the test starts; every one still running is killed at the end."""
    forget_worker_state()
    started: list[Host] = []
    yield started
    for host in started:
        if host.leader is not None and host.leader.poll() is None:
            host.kill()
    forget_worker_state()


@pytest.fixture
def servers(seaweedfs, gcs_emulator, azurite) -> dict:
    return {"seaweedfs": seaweedfs, "gcs": gcs_emulator, "azurite": azurite}


def photo_folder(root: Path, *, photos: int, padding: int) -> Path:
    """Small real JPEGs padded after their end marker, so every upload takes a while through a slow link."""
    (root / "ceremony").mkdir(parents=True)
    for i in range(photos):
        data = jpeg(64, 48, (i % 255, 90, 180), f"2026:06:20 1{i % 10}:{i % 60:02d}:00") + os.urandom(padding)
        (root / "ceremony" / f"IMG_{i:04d}.jpg").write_bytes(data)
    return root


def batch_jobs(*, run_by: Host) -> list[Job]:
    """upload_batch jobs that ``run_by`` is executing now (the started registry, read without cleaning it)."""
    queue = django_rq.get_queue("default")
    ids = StartedJobRegistry(queue=queue).get_job_ids(cleanup=False)
    jobs = [j for j in Job.fetch_many(ids, connection=queue.connection) if j is not None]
    return [j for j in jobs if j.func_name.endswith("upload_batch") and run_by.runs(j)
            and j.get_status() == JobStatus.STARTED]


def stored_identity(replica: Replica, servers: dict) -> tuple:
    """What changes on the provider if the object is written again: S3 versions (the bucket is versioned),
    the GCS generation, the Azure ETag."""
    p, key = replica.provider, replica.object_key
    if p.kind == "aws_s3":
        versions = s3_client(servers["seaweedfs"]).list_object_versions(Bucket=p.bucket, Prefix=key)
        return tuple(sorted(v["VersionId"] for v in versions.get("Versions", []) if v["Key"] == key))
    if p.kind == "gcs":
        return (gcs_client(servers["gcs"]).bucket(p.bucket).get_blob(key).generation,)
    blob = azure_service(servers["azurite"]).get_container_client(p.bucket).get_blob_client(key)
    return (blob.get_blob_properties().etag,)


def stored_sha256(replica: Replica, servers: dict) -> str:
    p, key = replica.provider, replica.object_key
    if p.kind == "aws_s3":
        data = s3_client(servers["seaweedfs"]).get_object(Bucket=p.bucket, Key=key)["Body"].read()
    elif p.kind == "gcs":
        data = gcs_client(servers["gcs"]).bucket(p.bucket).blob(key).download_as_bytes()
    else:
        data = azure_service(servers["azurite"]).get_container_client(p.bucket).download_blob(key).readall()
    return hashlib.sha256(data).hexdigest()


def test_a_host_killed_mid_backup_is_replaced_by_the_other_within_the_bound(tmp_path, cloud_providers, servers,
                                                                           hosts, settings):
    s3 = cloud_providers["s3"]
    s3_client(servers["seaweedfs"]).put_bucket_versioning(Bucket=s3.bucket,
                                                          VersioningConfiguration={"Status": "Enabled"})
    # 130 photos: two upload batches (100 + 30). S3 behind a slow link, so host A is still uploading when it dies.
    source = photo_folder(tmp_path / "nas" / "ines-tom", photos=130, padding=160 * KIB)
    report = wedding_import(path=source, couple="Ines & Tom", date=dt.date(2026, 6, 20), country="US")
    assert report.problems == []
    wedding: Wedding = report.wedding
    env = shared_env()

    with FaultProxy(servers["seaweedfs"].port, seed=17) as proxy:
        proxy.set(upload_bps=320 * KIB, match=lambda method, path: method == "PUT")
        # `updated` too: backends are cached per (provider, updated) in each process.
        Provider.objects.filter(pk=s3.pk).update(endpoint=proxy.url, updated=timezone.now())

        job = backup_start(wedding=wedding)
        host_a = Host("host-a", tmp_path, env).start(QUEUES)
        hosts.append(host_a)
        # Host B boots once A has planned the round and taken the first batch, so B takes the second one.
        wait_until(lambda: batch_jobs(run_by=host_a), timeout=90, what=lambda: f"host A uploading\n{host_a.tail()}")
        host_b = Host("host-b", tmp_path, env).start(QUEUES)
        hosts.append(host_b)
        wait_until(host_b.registered, timeout=60, what=lambda: f"host B up\n{host_b.tail()}")

        def a_mid_batch() -> Job | None:
            """Mid-backup, read from Redis and the database: host A runs a batch, part of it verified on S3,
            more going up right now."""
            for running in batch_jobs(run_by=host_a):
                assets = running.args[1]
                s3_done = Replica.objects.filter(asset_id__in=assets, provider=s3,
                                                 status=Replica.Status.VERIFIED).count()
                if len(assets) // 5 <= s3_done <= len(assets) * 3 // 4 and proxy.stats.bodies_in_flight:
                    return running
            return None

        abandoned: Job = wait_until(a_mid_batch, timeout=90, every=0.05,
                                    what=lambda: f"host A mid-batch\n{host_a.tail()}")
        host_a.kill()
        killed_at = time.monotonic()

        # Everything verified when A died, as the providers hold it now.
        verified = list(Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED)
                        .select_related("provider"))
        s3_verified_in_batch = [r for r in verified if r.provider_id == s3.pk and r.asset_id in abandoned.args[1]]
        assert len(s3_verified_in_batch) >= len(abandoned.args[1]) // 5
        before = {r.pk: stored_identity(r, servers) for r in verified}
        assert all(len(before[r.pk]) == 1 for r in verified if r.provider_id == s3.pk)
        assert BackupJob.objects.get(pk=job.pk).status == BackupJob.Status.RUNNING

        def requeued() -> bool:
            abandoned.refresh()
            return (abandoned.retries_left or 0) < ABANDONED_RETRIES

        wait_until(requeued, timeout=120, what=lambda: f"the abandoned batch re-queued\n{host_b.tail()}", every=0.2)
        requeued_after = time.monotonic() - killed_at

        def finished() -> bool:
            job.refresh_from_db()
            return job.status not in (BackupJob.Status.QUEUED, BackupJob.Status.RUNNING)

        wait_until(finished, timeout=120, what=lambda: f"the backup finished\n{host_b.tail()}", every=0.2)
        finished_after = time.monotonic() - killed_at

    assert job.status == BackupJob.Status.SUCCEEDED, (job.error_summary, host_b.tail())
    abandoned.refresh()
    assert host_b.runs(abandoned) and abandoned.get_status() == JobStatus.FINISHED, abandoned.get_status()
    # rq's threshold: no earlier than ABANDONED_AFTER - HEARTBEAT after the kill (the entry was renewed at
    # most one heartbeat before it), no later than the bound the settings promise.
    bound = (settings.WEDBACKUP_WORKER_ABANDONED_AFTER + settings.WEDBACKUP_WORKER_MAINTENANCE_INTERVAL
             + settings.WEDBACKUP_WORKER_HEARTBEAT)
    floor = settings.WEDBACKUP_WORKER_ABANDONED_AFTER - settings.WEDBACKUP_WORKER_HEARTBEAT
    assert floor - 1 <= requeued_after <= bound + 3, (requeued_after, bound)

    # Every asset at policy, each verified copy's bytes right on the provider.
    assert asset_gaps(wedding) == {}
    final = Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED).select_related(
        "provider", "asset")
    assert final.count() >= 3 * wedding.assets.count()
    assert [r.object_key for r in final if stored_sha256(r, servers) != r.asset.sha256] == []
    # Nothing verified before the kill was written again: same S3 version (one only), GCS generation, Azure ETag.
    rewritten = [(r.provider.name, r.object_key) for r in verified if stored_identity(r, servers) != before[r.pk]]
    assert rewritten == [], rewritten

    print("\ntwo-hosts " + json.dumps({  # bench/RESULTS.md quotes this line
        "requeued_after_s": round(requeued_after, 1), "finished_after_s": round(finished_after, 1),
        "bound_s": bound, "verified_at_kill": len(verified), "assets": wedding.assets.count()}))


def test_a_job_running_longer_than_the_threshold_is_left_alone_and_a_dead_ones_is_requeued(tmp_path, hosts):
    """Thresholds of seconds, so the test is quick: a 8 s job outlives a 3 s threshold many times over while
    both hosts run maintenance every second; then the same maintenance re-queues a killed host's job."""
    env = shared_env(WEDBACKUP_WORKER_HEARTBEAT="1", WEDBACKUP_WORKER_ABANDONED_AFTER="3",
                     WEDBACKUP_WORKER_MAINTENANCE_INTERVAL="1")
    first, second = Host("host-a", tmp_path, env).start(["bulk"]), Host("host-b", tmp_path, env).start(["bulk"])
    hosts.extend([first, second])
    wait_until(lambda: first.registered() and second.registered(), timeout=60, what="both hosts up")
    queue = django_rq.get_queue("bulk")

    long = queue.enqueue(time.sleep, 8, retry=Retry(max=3), job_timeout=60)
    started = time.monotonic()

    def long_done() -> bool:
        long.refresh()
        assert long.retries_left == 3, "a live job was declared abandoned and re-queued"
        return long.get_status() == JobStatus.FINISHED

    wait_until(long_done, timeout=60, what="the long job finished", every=0.1)
    assert time.monotonic() - started >= 8
    assert long.retries_left == 3

    doomed = queue.enqueue(time.sleep, 30, retry=Retry(max=3), job_timeout=60)
    wait_until(lambda: doomed.refresh() or doomed.get_status() == JobStatus.STARTED, timeout=30,
               what="the second job started")
    victim, survivor = (first, second) if first.runs(doomed) else (second, first)
    victim.kill()
    killed_at = time.monotonic()
    wait_until(lambda: doomed.refresh() or survivor.runs(doomed), timeout=30, what="the dead host's job re-queued")
    assert time.monotonic() - killed_at <= 3 + 1 + 1 + 2
    assert doomed.retries_left == 2


def test_a_work_horse_dies_with_its_worker(tmp_path, hosts):
    """Only the worker killed (the OOM killer's choice): its horse must not upload on while the job runs again."""
    host = Host("host-a", tmp_path, shared_env()).start(["bulk"])
    hosts.append(host)
    wait_until(host.registered, timeout=60, what=lambda: f"host up\n{host.tail()}")
    job = django_rq.get_queue("bulk").enqueue(time.sleep, 60, job_timeout=120)
    wait_until(lambda: job.refresh() or job.get_status() == JobStatus.STARTED, timeout=30, what="the job started")
    assert host.leader is not None
    worker_pid = next(pid for pid in session_pids(host.leader.pid) if parent_pid(pid) == host.leader.pid)
    horse_pid = wait_until(lambda: next((p for p in session_pids(host.leader.pid) if parent_pid(p) == worker_pid),
                                        None), timeout=10, what="the work horse")
    os.kill(worker_pid, signal.SIGKILL)
    wait_until(lambda: horse_pid not in session_pids(host.leader.pid), timeout=10, what="the horse gone")
