"""RPO of a wedding-day-critical wedding: photos dropped at a steady rate into its watched folder, how long until
each one is protected.

    .venv/bin/python bench/rpo.py [--rate 2] [--size-mb 5] [--duration 120] [--workers 2] [--quiet 5]

A writer puts ``--rate`` photos a second of ``--size-mb`` each into the folder of a wedding happening today, for
``--duration`` seconds, each written in 1 MB pieces (as a card copy does) and closed; the moment it closes is
the file's "complete" time. ``manage.py watch_sources`` (its own process, the production settings except
``--quiet``) and N real ``manage.py rqworker`` processes run against SeaweedFS (aws_s3 and wasabi buckets) and
Azurite, policy 3 copies on 3 distinct providers. Reported: p50/p95/max seconds from complete to
``Asset.protected_at`` (min copies verified, stamped by the engine), the same to the last target replica verified
(``Replica.verified_at``), and files missed (not protected within ``--grace`` seconds after the writer stopped).
Goal (issue 16): p95 under 30 s on this 2-core box, nothing missed. Database: a throwaway PostgreSQL database
``bench_rpo`` (dropped and re-created); Redis db 15 (flushed). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))
from _servers import MB, ROOT, group_cpu_seconds, local_servers, print_machine, table  # noqa: E402
from backup import (  # noqa: E402
    django_env,
    providers_create,
    reset_database,
    start_workers,
    stop_workers,
    wait_registered,
)

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/bench_rpo"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
PIECE = MB


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p95 is a file that really took that long)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(q / 100 * len(ordered))) - 1)]


def write_photos(folder: Path, *, rate: float, size: int, duration: float) -> dict[str, float]:
    """Write ``rate`` files a second for ``duration`` seconds; relative path -> wall time its writer closed it."""
    body = os.urandom(size)  # one random body, a random head per file: every file's sha256 differs
    done: dict[str, float] = {}
    start, n = time.monotonic(), int(duration * rate)
    for i in range(n):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        rel = f"ceremony/IMG_{i:05d}.jpg"
        with open(folder / rel, "wb") as fh:
            fh.write(b"\xff\xd8\xff\xe0" + os.urandom(60))
            for off in range(64, size, PIECE):
                fh.write(body[off:off + PIECE])
        done[rel] = time.time()
        if i and i % int(rate * 10) == 0:
            print(f"#   {i}/{n} files written", flush=True)
    lag = time.monotonic() - start - duration
    if lag > 1:
        print(f"# the writer fell {lag:.1f}s behind its schedule (the box is busy)")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2.0, help="photos per second")
    parser.add_argument("--size-mb", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of writing")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quiet", type=float, default=5.0, help="WEDBACKUP_WATCH_QUIET_SECONDS")
    parser.add_argument("--grace", type=float, default=180.0, help="seconds after the writer stops")
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory(prefix="wb-rpo-") as tmp, local_servers(Path(tmp)) as servers:
        run(args, servers, Path(tmp))


def run(args, servers, workdir: Path) -> None:
    database_url = reset_database(args.database_url, workdir)
    env = {**django_env(workdir, database_url, args.redis_url), "WEDBACKUP_WATCH_QUIET_SECONDS": str(args.quiet),
           "WEDBACKUP_INBOX_ROOT": "", "WEDBACKUP_IMPORT_ROOTS": str(workdir)}
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    import django

    django.setup()
    import django_rq
    from django.db.models import Count, Max
    from django.utils import timezone

    from backups.ingest import wedding_import
    from backups.models import Asset, BackupJob, Replica

    django_rq.get_connection("default").flushdb()
    providers_create(servers)
    folder = workdir / "wedding"
    (folder / "ceremony").mkdir(parents=True)
    wedding = wedding_import(path=folder, couple="Rpo & Bench", date=timezone.localdate(), country="US").wedding
    assert wedding.wedding_day_critical
    procs = start_workers(args.workers, env, workdir)
    with open(workdir / "watcher.log", "wb") as log:
        watcher = subprocess.Popen([sys.executable, "manage.py", "watch_sources", "--owner", "bench"], cwd=ROOT,
                                   env={**os.environ, **env, "LOG_LEVEL": "WARNING"}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_registered(django_rq.get_connection("default"), procs)
        deadline = time.monotonic() + 60
        while not django_rq.get_connection("default").exists(f"wedbackup:watch:wedding:{wedding.pk}"):
            if time.monotonic() > deadline or watcher.poll() is not None:
                raise SystemExit(f"the watcher did not take the wedding on:\n{(workdir / 'watcher.log').read_text()}")
            time.sleep(0.2)
        cpu_before = {"servers": servers.cpu_seconds(), "workers": sum(group_cpu_seconds(p.pid) for p in procs),
                      "watcher": group_cpu_seconds(watcher.pid)}
        print(f"# writing {int(args.rate * args.duration)} x {args.size_mb:g} MB at {args.rate:g}/s for "
              f"{args.duration:g}s; quiet period {args.quiet:g}s; {args.workers} worker(s)", flush=True)
        written = write_photos(folder, rate=args.rate, size=int(args.size_mb * MB), duration=args.duration)
        stopped, deadline = time.time(), time.monotonic() + args.grace
        while time.monotonic() < deadline:
            protected = Asset.objects.filter(wedding=wedding, protected_at__isnull=False).count()
            if protected >= len(written):
                break
            if watcher.poll() is not None or any(p.poll() is not None for p in procs):
                raise SystemExit("the watcher or a worker died; see the logs in the temp dir")
            time.sleep(0.5)
        drained = time.time() - stopped
        cpu = {"servers": servers.cpu_seconds() - cpu_before["servers"],
               "workers": sum(group_cpu_seconds(p.pid) for p in procs) - cpu_before["workers"],
               "watcher": group_cpu_seconds(watcher.pid) - cpu_before["watcher"]}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(watcher.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            watcher.wait(timeout=15)
        stop_workers(procs)

    assets = {a.relative_path: a for a in Asset.objects.filter(wedding=wedding)}
    last_verified = dict(Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED)
                         .values_list("asset__relative_path").annotate(t=Max("verified_at")))
    copies = dict(Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED)
                  .values_list("asset__relative_path").annotate(n=Count("pk")))
    to_protected, to_all, to_seen, missed = [], [], [], []
    for rel, closed in written.items():
        asset = assets.get(rel)
        if asset is None or asset.protected_at is None:
            missed.append(rel)
            continue
        to_protected.append(asset.protected_at.timestamp() - closed)
        to_seen.append(asset.seen_complete_at.timestamp() - closed)
        if rel in last_verified and copies.get(rel, 0) >= 3:
            to_all.append(last_verified[rel].timestamp() - closed)
    jobs = BackupJob.objects.filter(wedding=wedding)
    rows = [[name, str(len(v)), *(f"{percentile(v, q):.1f}" for q in (50, 95)), f"{max(v):.1f}"]
            for name, v in (("complete -> catalogued (seen_complete_at)", to_seen),
                            ("complete -> protected_at (min copies verified)", to_protected),
                            ("complete -> every target replica verified", to_all)) if v]
    print(table(rows, ["from the writer's close", "files", "p50 s", "p95 s", "max s"]))
    print(f"files written {len(written)}, protected {len(to_protected)}, missed {len(missed)}"
          f"{' (' + ', '.join(missed[:5]) + ')' if missed else ''}; backup jobs {jobs.count()} "
          f"({dict(jobs.values_list('status').annotate(n=Count('pk')))}); last file protected "
          f"{drained:.1f}s after the writer stopped")
    print(f"CPU s during the run: servers {cpu['servers']:.1f}, workers {cpu['workers']:.1f}, "
          f"watcher {cpu['watcher']:.1f} (over {args.duration + drained:.0f}s wall on {os.cpu_count()} cores)")
    goal = to_protected and percentile(to_protected, 95) < 30 and not missed
    print(f"goal p95 < 30 s and nothing missed: {'met' if goal else 'NOT met'}")
    from django.db import connections

    connections.close_all()


if __name__ == "__main__":
    main()
