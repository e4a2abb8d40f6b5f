"""Load under faults: many weddings of small files backed up at once by several real RQ worker processes
against the local S3, GCS and Azure servers, each behind a fault proxy (tests/faults/proxy.py).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_load REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/load.py [--weddings 50] [--files 400] [--workers 4] [--fault-rate 0.05] [--scale 0.1]

Prints throughput, per-file latency (p50/p95 of Replica created -> verified_at, and of the proxied upload
requests), retries (Replica.attempts beyond the first; faults the proxies injected) and whether every
asset reached policy. The database is flushed first: it must be one made for this (its name contains
"bench", "load" or "faults"). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) in sys.path:  # bench/costs.py would otherwise shadow the ``costs`` app
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))
ACCESS_KEY, SECRET_KEY = "wedbackup-load", "wedbackup-load-secret"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def make_wedding_folder(root: Path, files: int, rng: random.Random) -> None:
    """Small files in a few folders: thumbnails, notes, sidecars (1-24 KB, random bytes)."""
    for i in range(files):
        folder = root / ("ceremony", "reception", "portraits", "notes")[i % 4]
        folder.mkdir(parents=True, exist_ok=True)
        ext = ("jpg", "txt", "xmp", "pdf")[i % 4]
        (folder / f"file_{i:05d}.{ext}").write_bytes(os.urandom(rng.randint(1024, 24 * 1024)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weddings", type=int, default=50)
    ap.add_argument("--files", type=int, default=400, help="files per wedding before --scale")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies weddings and files (e.g. 0.1)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--fault-rate", type=float, default=0.05, help="fraction of requests faulted on every provider")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args()

    db_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    db_name = db_url.rsplit("/", 1)[-1]
    if not db_url.startswith("postgres") or not any(w in db_name for w in ("bench", "load", "faults")):
        sys.exit("set DATABASE_URL to a PostgreSQL database made for this (name containing bench/load/faults)")
    if not redis_url:
        sys.exit("set REDIS_URL (a Redis database of its own: it is flushed)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wedbackup.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("flush", verbosity=0, interactive=False)
    import django_rq

    django_rq.get_connection("default").flushdb()

    from providers.localservers.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, start_azurite
    from providers.localservers.gcs_emulator import ensure_bucket, start_gcs_emulator
    from providers.localservers.seaweedfs import create_bucket, start_seaweedfs
    from tests.faults.proxy import FaultProxy

    weddings_n = max(1, round(args.weddings * args.scale))
    files_n = max(1, round(args.files * args.scale))
    work = Path(tempfile.mkdtemp(prefix="wedbackup-load-"))
    servers, proxies, procs = [], [], []
    try:
        s3 = start_seaweedfs(work / "seaweedfs", access_key=ACCESS_KEY, secret_key=SECRET_KEY)
        servers.append(s3)
        gcs = start_gcs_emulator(work / "gcs")
        servers.append(gcs)
        azure = start_azurite(work / "azurite")
        servers.append(azure)
        bucket = f"load-{uuid.uuid4().hex[:12]}"
        create_bucket(s3, bucket)
        ensure_bucket(gcs, bucket)
        from azure.storage.blob import BlobServiceClient

        from providers.localservers.azurite import connection_string

        BlobServiceClient.from_connection_string(connection_string(azure)).create_container(bucket)
        rate = args.fault_rate
        for i, server in enumerate((s3, gcs, azure)):
            proxy = FaultProxy(server.port, seed=args.seed + i).start()
            # Most faults are answered errors (500/503/SlowDown); a fifth are connections cut mid-body.
            proxy.set(error_rate=rate * 0.8, drop_rate=rate * 0.2)
            proxies.append(proxy)

        from backups.ingest import wedding_import
        from backups.models import BackupJob, Replica
        from backups.planning import asset_gaps
        from backups.tasks import backup_start
        from providers.models import Provider

        Provider.objects.create(name="s3-load", kind="aws_s3", region="us-east-1", bucket=bucket,
                                endpoint=proxies[0].url,
                                credentials={"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY})
        Provider.objects.create(name="gcs-load", kind="gcs", region="us-central1", bucket=bucket,
                                endpoint=proxies[1].url, credentials={"anonymous": True},
                                options={"project": str(gcs.extra["project"])})
        Provider.objects.create(name="azure-load", kind="azure_blob", region="eastus", bucket=bucket,
                                endpoint=f"{proxies[2].url}/{DEV_ACCOUNT_NAME}",
                                credentials={"account_name": DEV_ACCOUNT_NAME, "account_key": DEV_ACCOUNT_KEY})

        rng = random.Random(args.seed)
        began = time.monotonic()
        weddings = []
        for w in range(weddings_n):
            folder = work / "weddings" / f"w{w:03d}"
            make_wedding_folder(folder, files_n, rng)
            report = wedding_import(path=folder, couple=f"Load {w} & Co", date=dt.date(2026, 6, 1) + dt.timedelta(w),
                                    country="US")
            weddings.append(report.wedding)
        import_s = time.monotonic() - began
        total_files = sum(w.assets.count() for w in weddings)
        total_bytes = sum(a for w in weddings for a in w.assets.values_list("size", flat=True))
        print(f"imported {weddings_n} weddings, {total_files} files, {total_bytes / 1e6:.1f} MB in {import_s:.1f}s")

        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "wedbackup.settings", "WEDBACKUP_WORKER_SCHEDULES": "0"}
        jobs = [backup_start(wedding=w) for w in weddings]
        began = time.monotonic()
        log = open(work / "workers.log", "ab")  # noqa: SIM115 (closed in finally)
        for _ in range(args.workers):
            procs.append(subprocess.Popen([sys.executable, "manage.py", "rqworker", "critical", "default", "bulk",
                                           "--burst"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        for p in procs:
            p.wait(timeout=args.timeout)
        wall = time.monotonic() - began
        log.close()

        statuses = dict.fromkeys(BackupJob.Status.values, 0)
        for job in BackupJob.objects.filter(pk__in=[j.pk for j in jobs]):
            statuses[job.status] += 1
        verified = Replica.objects.filter(status=Replica.Status.VERIFIED, asset__wedding__in=weddings)
        latencies = [(v - c).total_seconds() for c, v in verified.values_list("created", "verified_at")]
        attempts = list(Replica.objects.filter(asset__wedding__in=weddings).values_list("attempts", flat=True))
        below = sum(len(asset_gaps(w)) for w in weddings)
        puts = [e.finished - e.started for p in proxies for e in p.stats.exchanges
                if e.method in ("PUT", "POST") and e.finished and e.status and e.status < 300]
        injected = sum(p.stats.errors + p.stats.drops for p in proxies)
        requests = sum(p.stats.requests for p in proxies)
        up_bytes = sum(verified.values_list("size", flat=True))

        print(f"\nbench/load.py: {weddings_n} weddings x {files_n} files, {args.workers} workers, "
              f"fault rate {rate:.0%} on every provider (seed {args.seed})")
        rows = [
            ("wall time (enqueue -> last worker exit)", f"{wall:.1f} s"),
            ("replicas verified", f"{verified.count()} ({up_bytes / 1e6:.1f} MB)"),
            ("throughput", f"{verified.count() / wall:.1f} replicas/s, {total_files / wall:.1f} files/s, "
                           f"{up_bytes / 1e6 / wall:.2f} MB/s"),
            ("per-file latency created->verified p50 / p95", f"{percentile(latencies, 50):.2f} s / "
                                                             f"{percentile(latencies, 95):.2f} s"),
            ("per-request upload latency p50 / p95 (proxy)", f"{percentile(puts, 50) * 1000:.0f} ms / "
                                                             f"{percentile(puts, 95) * 1000:.0f} ms"),
            ("faults injected / proxied requests", f"{injected} / {requests} ({injected / max(requests, 1):.1%})"),
            ("replica retries (attempts beyond the first)", f"{sum(max(a - 1, 0) for a in attempts)} over "
                                                            f"{sum(a > 1 for a in attempts)} replicas"),
            ("jobs by status", ", ".join(f"{k}={v}" for k, v in statuses.items() if v)),
            ("assets below policy", str(below)),
        ]
        width = max(len(r[0]) for r in rows)
        for name, value in rows:
            print(f"  {name.ljust(width)}  {value}")
        if below or statuses.get("succeeded", 0) != len(jobs):
            print(f"NOT every asset reached policy; worker log: {work / 'workers.log'}")
            return 1
        print("every asset reached policy")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for proxy in proxies:
            proxy.stop()
        for server in servers:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
