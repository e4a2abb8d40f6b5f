"""The engine against rclone: a 1 GB wedding to three providers on local servers, in one run.

    .venv/bin/python bench/backup.py [--scale 0.25] [--workers 1] [--rclone both|sequential|parallel|none]

A wedding of 400 x 2 MB photos and 2 x 100 MB videos (random bytes; ``--scale`` shrinks every file) is
imported with ``wedding_import`` and backed up by the real engine: N real RQ worker processes
(``manage.py rqworker critical default bulk health``, started and registered first, as in production),
then ``backup_start``, timed until the job has finished, to aws_s3 and wasabi (two SeaweedFS buckets)
and azure_blob (Azurite), policy 3 copies on 3 distinct providers; every replica must be verified.
Then ``rclone copy --checksum`` does the same work to fresh buckets on the same servers: three copies
one after another, and three at once. Target (issue 4): the engine's fan-out takes at most 0.8 x the
time of the three sequential rclone copies. Database: a throwaway PostgreSQL database (``bench``,
dropped and re-created) or ``--database-url sqlite``; Redis db 12 (flushed). Everything lives in a
temp dir; servers and workers are stopped at the end, also on error and Ctrl-C. Not part of
``make test``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))
from _real_size import real_wedding_folder, rescan_check, throttled_run  # noqa: E402
from _servers import (  # noqa: E402
    MB,
    ROOT,
    Servers,
    group_cpu_seconds,
    local_servers,
    print_machine,
    table,
    write_random_file,
)

# WEDBACKUP_BENCH_RCLONE / _PY_SPY: other binaries (e.g. installed with pip --target outside the venv).
RCLONE = Path(os.environ.get("WEDBACKUP_BENCH_RCLONE") or ROOT / ".venv" / "bin" / "rclone")
PY_SPY = Path(os.environ.get("WEDBACKUP_BENCH_PY_SPY") or ROOT / ".venv" / "bin" / "py-spy")
TARGET_RATIO = 0.8
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
WORKER_QUEUES = ["critical", "default", "bulk", "health"]


def wedding_folder(root: Path, scale: float) -> tuple[int, int]:
    photo, video = max(1, int(2 * MB * scale)), max(1, int(100 * MB * scale))
    for i in range(400):
        write_random_file(root / "photos" / f"IMG_{i + 1:04d}.jpg", photo)
    for i in range(2):
        write_random_file(root / "video" / f"clip_{i + 1}.mp4", video)
    return 402, 400 * photo + 2 * video


def reset_database(url: str, workdir: Path) -> str:
    """A fresh throwaway database: PostgreSQL ``bench`` dropped and re-created, or a SQLite file in the temp dir."""
    if url == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    parsed = urlparse(url)
    if parsed.scheme.startswith("postgres"):
        import psycopg

        name = parsed.path.lstrip("/")
        if not name.replace("_", "").isalnum():
            raise SystemExit(f"refusing odd database name {name!r}")
        admin = parsed._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    return url


# One credentials key for the whole script: Django's settings are read once per process, so with --repeat
# this process and each run's workers (new processes, new var dir) must not each make their own.
CREDENTIALS_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


def django_env(workdir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "wedbackup.settings", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "WEDBACKUP_VAR_DIR": str(workdir / "var"), "DEBUG": "0", "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT), "WEDBACKUP_WORKER_SCHEDULES": "0",  # no probes or snapshots in the timing
        "WEDBACKUP_CREDENTIALS_KEY": CREDENTIALS_KEY,
    }


def providers_create(servers: Servers) -> list:
    from backups.models import BackupPolicy
    from providers.models import Provider

    specs = [("bench-s3", "aws_s3", "us-east-1", servers.s3_bucket("wb-s3")),
             ("bench-wasabi", "wasabi", "us-east-1", servers.s3_bucket("wb-wasabi")),
             ("bench-azure", "azure_blob", "eastus", servers.azure_container("wb-azure"))]
    out = [Provider.objects.create(name=name, kind=kind, region=region, bucket=s["bucket"], endpoint=s["endpoint"],
                                   credentials=s["credentials"])
           for name, kind, region, s in specs]
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers, policy.cross_region_copy = 3, 3, "off"
    policy.save()
    return out


def start_workers(n: int, env: dict[str, str], logdir: Path, profile: Path | None = None,
                  idle: bool = True, script: str = "manage.py") -> list[subprocess.Popen]:
    """N long-running workers (not ``--burst``: a burst worker quits as soon as the queues are empty for a
    moment, so extra workers would exit before the first round has fanned its batches out)."""
    procs = []
    for i in range(n):
        argv = [sys.executable, script, "rqworker", *WORKER_QUEUES]
        if profile:  # py-spy samples the worker and its forked work horses
            profile.mkdir(parents=True, exist_ok=True)
            argv = [str(PY_SPY), "record", "--subprocesses", *(["--idle"] if idle else []), "--format", "raw",
                    "--rate", "50", "-o", str(profile / f"worker-{i}.txt"), "--", *argv]
        with open(logdir / f"worker-{i}.log", "wb") as log:
            procs.append(subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def wait_registered(conn, procs: list[subprocess.Popen], timeout: float = 120.0) -> None:
    from rq import Worker

    deadline = time.monotonic() + timeout
    while len(Worker.all(connection=conn)) < len(procs):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise SystemExit("an RQ worker did not start; see worker-*.log in the temp dir")
        time.sleep(0.1)


def stop_workers(procs: list[subprocess.Popen], grace: float = 30.0) -> list:
    """SIGINT (RQ's warm shutdown; py-spy then writes its profile), SIGKILL after ``grace``; rusage of each."""
    usage = []
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    for p in procs:
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                usage.append(ru)
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
            time.sleep(0.05)
    return usage


def engine_run(args, servers: Servers, workdir: Path, folder: Path) -> dict:
    """Import; N warm workers; time from backup_start until the job has finished; check every replica."""
    database_url = reset_database(args.database_url, workdir)
    env = django_env(workdir, database_url, args.redis_url)
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    import django

    django.setup()
    import django_rq
    from django.db.models import Count, Max, Min

    from backups.ingest import wedding_import
    from backups.models import BackupJob, Replica
    from backups.tasks import backup_start

    django_rq.get_connection("default").flushdb()  # Redis db 12 only: stale queues or slots from an aborted run
    providers = providers_create(servers)
    started = time.perf_counter()
    report = wedding_import(path=folder, couple="Bench & Mark", date=dt.date.today() - dt.timedelta(days=30),
                            country="US")
    import_s = time.perf_counter() - started
    if report.problems:
        raise SystemExit(f"import problems: {report.problems[:3]}")
    wedding = report.wedding
    print(f"# engine: imported {len(report.added)} files in {import_s:.1f}s (sha256 of every file)", flush=True)

    procs = start_workers(args.workers, env, workdir, args.profile, idle=not args.profile_cpu,
                          script=args.worker_script)
    try:
        wait_registered(django_rq.get_connection("default"), procs)
        os.sync()  # the fresh wedding's dirty pages: written back now, not by whichever run comes first
        server_cpu = servers.cpu_by_server()
        client_cpu = sum(group_cpu_seconds(p.pid) for p in procs)  # start-up imports are not the backup's
        started = time.perf_counter()
        job = backup_start(wedding=wedding)
        finished = {BackupJob.Status.SUCCEEDED, BackupJob.Status.PARTIAL, BackupJob.Status.FAILED}
        while job.status not in finished:
            if time.perf_counter() - started > args.timeout:
                raise SystemExit(f"the backup did not finish within {args.timeout}s")
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a worker died; see worker-*.log in the temp dir")
            time.sleep(0.05)
            job.refresh_from_db()
        wall = time.perf_counter() - started
        server_cpu = {name: cpu - server_cpu.get(name, 0.0) for name, cpu in servers.cpu_by_server().items()}
        client_cpu = sum(group_cpu_seconds(p.pid) for p in procs) - client_cpu
        extra = {}
        if args.wedding == "real":  # outside the timings above; the workers' peak RSS covers these too
            extra["rescan"] = rescan_check(wedding)
            print(f"# re-scan of the unchanged wedding: {extra['rescan']}", flush=True)
            if args.throttle_mbps:
                for name, bps in (("unthrottled", 0), ("throttled", int(args.throttle_mbps * MB))):
                    extra[name] = throttled_run(folder, workdir, servers, providers, throttle_bps=bps,
                                                timeout=args.timeout)
                    print(f"# the videos again, {name}: {extra[name]}", flush=True)
    finally:
        usage = stop_workers(procs)
    verified = Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED).count()
    assets = wedding.assets.count()
    if job.status != BackupJob.Status.SUCCEEDED or verified != 3 * assets:
        logs = "\n".join((workdir / f"worker-{i}.log").read_text()[-3000:] for i in range(args.workers))
        raise SystemExit(f"engine backup ended {job.status} with {verified}/{3 * assets} verified replicas: "
                         f"{job.error_summary}\n{logs}")
    by_provider = dict(Replica.objects.filter(asset__wedding=wedding).values_list("provider__name")
                       .annotate(n=Count("pk")))
    first, last = (Replica.objects.filter(asset__wedding=wedding).aggregate(a=Min("verified_at"), b=Max("verified_at"))
                   .values())
    # Where the wall time goes: planning until the first verified copy, the uploads, then manifests and finish.
    phases = {"to first copy": (first - job.started_at).total_seconds(), "uploads": (last - first).total_seconds(),
              "after last copy": (job.finished_at - last).total_seconds()}
    from django.db import connections

    connections.close_all()  # a --repeat drops and re-creates the database: no connection may hold it
    return {"import_s": import_s, "wall_s": wall, "server_cpu": server_cpu, "client_cpu": client_cpu,
            "job_s": (job.finished_at - job.started_at).total_seconds(),
            "worker_rss_mb": [u.ru_maxrss / 1024 for u in usage],
            "worker_cpu_s": [u.ru_utime + u.ru_stime for u in usage], "replicas": by_provider,
            "slug": wedding.slug, "rounds": (job.result or {}).get("rounds"), "phases": phases, **extra}


def cpu_columns(by_server: dict[str, float]) -> list[str]:
    return [f"{sum(by_server.values()):.1f}", *(f"{by_server.get(name, 0):.1f}" for name in ("seaweedfs", "azurite"))]


def server_floor(by_server: dict[str, float], client_cpu: float) -> tuple[float, float]:
    """The shortest wall time the CPUs allow: the servers' CPU spread over every core, but no less than
    Azurite's own CPU (Node.js runs its requests on one thread); then the same with the client's CPU added."""
    cores = os.cpu_count() or 1
    servers = sum(by_server.values())
    single = by_server.get("azurite", 0.0)
    return max(servers / cores, single), max((servers + client_cpu) / cores, single)


def rclone_env(servers: Servers, workdir: Path) -> dict[str, str]:
    from _servers import ACCESS_KEY, SECRET_KEY

    from providers.localservers.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

    s3, azure = servers.seaweedfs(), servers.azurite()
    env = {"RCLONE_CONFIG": str(workdir / "rclone.conf")}  # never the user's own config
    for name in ("S3", "WASABI"):
        env.update({f"RCLONE_CONFIG_WB{name}_TYPE": "s3", f"RCLONE_CONFIG_WB{name}_PROVIDER": "SeaweedFS",
                    f"RCLONE_CONFIG_WB{name}_ACCESS_KEY_ID": ACCESS_KEY,
                    f"RCLONE_CONFIG_WB{name}_SECRET_ACCESS_KEY": SECRET_KEY,
                    f"RCLONE_CONFIG_WB{name}_ENDPOINT": str(s3.extra["endpoint"]),
                    f"RCLONE_CONFIG_WB{name}_REGION": "us-east-1"})
    env.update({"RCLONE_CONFIG_WBAZURE_TYPE": "azureblob", "RCLONE_CONFIG_WBAZURE_ACCOUNT": DEV_ACCOUNT_NAME,
                "RCLONE_CONFIG_WBAZURE_KEY": DEV_ACCOUNT_KEY,
                "RCLONE_CONFIG_WBAZURE_ENDPOINT": str(azure.extra["endpoint"])})
    return env


def rclone_targets(servers: Servers, tag: str) -> list[str]:
    servers.s3_bucket(f"rc-{tag}-s3")
    servers.s3_bucket(f"rc-{tag}-wasabi")
    servers.azure_container(f"rc-{tag}-azure")
    return [f"wbs3:rc-{tag}-s3", f"wbwasabi:rc-{tag}-wasabi", f"wbazure:rc-{tag}-azure"]


def rclone_argv(folder: Path, dest: str, slug: str, extra: list[str]) -> list[str]:
    return [str(RCLONE), "copy", str(folder), f"{dest}/weddings/{slug}", "--checksum", "-q", *extra]


def rclone_run(folder: Path, dests: list[str], slug: str, env: dict[str, str], *, parallel: bool,
               extra: list[str]) -> tuple[float, list[float], float]:
    """Three copies, one after another or all at once: (wall seconds, seconds per copy, rclone CPU seconds)."""
    full_env = {**os.environ, **env}
    started = time.perf_counter()
    each, cpu = [], 0.0

    def launch(dest: str) -> tuple[subprocess.Popen, float]:
        return subprocess.Popen(rclone_argv(folder, dest, slug, extra), env=full_env), time.perf_counter()

    def reap(proc: subprocess.Popen, t: float) -> None:
        nonlocal cpu
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"rclone exited with {proc.returncode}")
        each.append(time.perf_counter() - t)
        cpu += ru.ru_utime + ru.ru_stime

    procs: list[tuple[subprocess.Popen, float]] = []
    try:
        if parallel:
            procs = [launch(d) for d in dests]
            for p, t in procs:
                reap(p, t)
        else:
            for d in dests:
                procs.append(launch(d))
                reap(*procs[-1])
    finally:
        for p, _ in procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                with contextlib.suppress(ChildProcessError):
                    os.wait4(p.pid, 0)
    return time.perf_counter() - started, each, cpu


def rclone_check(dests: list[str], slug: str, env: dict[str, str], files: int, size: int) -> None:
    """rclone size on each destination: every file and byte landed."""
    import json

    for dest in dests:
        out = subprocess.run([str(RCLONE), "size", "--json", f"{dest}/weddings/{slug}"], env={**os.environ, **env},
                             capture_output=True, text=True, check=True).stdout
        got = json.loads(out)
        if (got["count"], got["bytes"]) != (files, size):
            raise SystemExit(f"rclone copy to {dest} left {got}, expected {files} files / {size} bytes")



def one_run(args) -> dict[str, float]:
    """Servers, wedding, the engine, then rclone, in a fresh temp dir; the ratios per rclone mode."""
    with tempfile.TemporaryDirectory(prefix="wb-bench-backup-") as tmp, local_servers(Path(tmp)) as servers:
        workdir = Path(tmp)
        folder = workdir / "wedding"
        t = time.perf_counter()
        make = real_wedding_folder if args.wedding == "real" else wedding_folder
        files, size = make(folder, args.scale)
        mb = size / MB
        print(f"# wedding: {files} files, {mb:.0f} MB (scale {args.scale}) written in {time.perf_counter() - t:.1f}s;"
              f" {args.workers} worker(s); DB {args.database_url}", flush=True)
        servers.seaweedfs()
        servers.azurite()

        engine = engine_run(args, servers, workdir, folder)
        engine_server_cpu = engine.pop("server_cpu")
        print(f"# engine: {engine['wall_s']:.1f}s from backup_start to job done ({engine['job_s']:.1f}s started_at -> "
              f"finished_at), "
              f"worker peak RSS {', '.join(f'{r:.0f}' for r in engine['worker_rss_mb'])} MB, "
              f"worker CPU {', '.join(f'{c:.1f}' for c in engine['worker_cpu_s'])} s", flush=True)
        rows = [[f"WedBackup, 3 providers, {args.workers} worker(s)", f"{engine['wall_s']:.1f}",
                 f"{3 * mb / engine['wall_s']:.1f}", f"{engine['client_cpu']:.1f}",
                 *cpu_columns(engine_server_cpu)]]
        if args.rclone != "none" and (args.wipe_servers if args.wipe_servers is not None else args.wedding == "real"):
            servers.wipe()  # rclone then writes to empty servers, as the engine did
            print("# servers wiped and started afresh for rclone", flush=True)
        env = rclone_env(servers, workdir)
        extra = args.rclone_flags.split()
        results, rclone_cpu = {}, {}
        for mode in ("sequential", "parallel"):
            if args.rclone not in (mode, "both"):
                continue
            dests = rclone_targets(servers, mode[:3])
            server_cpu = servers.cpu_by_server()
            os.sync()  # the engine's objects on the servers' disks: written back before rclone's turn
            wall, each, cpu = rclone_run(folder, dests, engine["slug"], env, parallel=mode == "parallel", extra=extra)
            server_cpu = {name: cpu - server_cpu.get(name, 0.0) for name, cpu in servers.cpu_by_server().items()}
            rclone_check(dests, engine["slug"], env, files, size)
            results[mode] = wall
            rclone_cpu[mode] = cpu
            rows.append([f"rclone copy x3, {mode}", f"{wall:.1f}", f"{3 * mb / wall:.1f}", f"{cpu:.1f}",
                         *cpu_columns(server_cpu)])
            print(f"# rclone {mode}: {wall:.1f}s ({', '.join(f'{s:.1f}' for s in each)} per copy)", flush=True)

    print()
    print(table(rows, ["run (3 x " + f"{mb:.0f} MB)", "seconds", "MB/s", "client CPU s", "servers CPU s",
                       "seaweedfs", "azurite"]))
    print(f"({os.cpu_count()} CPUs: client and servers share them; client CPU = worker processes (from backup_start "
          "to the job's end) or rclone)")
    floor = server_floor(engine_server_cpu, engine["client_cpu"])
    print(f"\nengine: import {engine['import_s']:.1f}s (not in the times above), rounds {engine['rounds']}, "
          f"replicas per provider {engine['replicas']}")
    print("engine phases: " + ", ".join(f"{name} {sec:.1f}s" for name, sec in engine["phases"].items()))
    gb = 3 * size / (1024 * MB)
    print(f"client CPU per verified GiB: engine {engine['client_cpu'] / gb:.2f} s"
          + "".join(f", rclone {mode} {cpu / gb:.2f} s (engine/rclone {engine['client_cpu'] / cpu:.2f})"
                    for mode, cpu in rclone_cpu.items())
          + f"; worker peak RSS {max(engine['worker_rss_mb']):.0f} MB (target < 300)")
    if "rescan" in engine:
        r = engine["rescan"]
        print(f"re-scan of the unchanged wedding: {r['bytes_read']:,} bytes read by the process (the "
              f"wedding holds {r['wedding_bytes']:,}), {r['unchanged']} unchanged, {r['planned']} uploads "
              f"planned, {r['seconds']:.1f}s")
    if "throttled" in engine:
        base, t = engine["unthrottled"], engine["throttled"]
        print(f"one target throttled ({t['throttled']} at {args.throttle_mbps} MB/s), the two videos "
              f"({t['bytes'] / MB:.0f} MB): {t['status']}, {t['verified']} copies verified; last copy per provider "
              + ", ".join(f"{name} {sec:.1f}s (unthrottled {base['last_copy_s'].get(name, float('nan')):.1f}s)"
                          for name, sec in t["last_copy_s"].items()))
    ratios = {}
    for mode, wall in results.items():
        ratio = engine["wall_s"] / wall
        verdict = f"  (target <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'NOT met'})"
        print(f"ratio WedBackup / rclone x3 {mode}: {ratio:.2f}" + (verdict if mode == "sequential" else ""))
        print(f"  floor on this machine: the servers' CPU alone allows no less than {floor[0]:.1f}s (ratio "
              f"{floor[0] / wall:.2f}); with the engine's client CPU too, {floor[1]:.1f}s "
              f"(ratio {floor[1] / wall:.2f})")
        ratios[mode] = ratio
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every file size (0.25 = a 250 MB wedding)")
    parser.add_argument("--workers", type=int, default=1, help="RQ worker processes (default 1)")
    parser.add_argument("--wedding", choices=["standard", "real"], default="standard",
                        help="standard: 400 x 2 MB + 2 x 100 MB; real: 2,998 photos + videos of 1 and 1.75 GiB "
                             "(10 GiB; with a re-scan of the unchanged wedding and one throttled target)")
    parser.add_argument("--throttle-mbps", type=float, default=25.0,
                        help="--wedding real: the S3 target's upload speed while the videos are backed up again "
                             "(0: skip that phase)")
    parser.add_argument("--rclone", choices=["both", "sequential", "parallel", "none"], default="both")
    parser.add_argument("--rclone-flags", default="", help="extra rclone flags, e.g. '--transfers 8'")
    parser.add_argument("--database-url", default=DEFAULT_DB,
                        help=f"throwaway PostgreSQL database (dropped and re-created; default {DEFAULT_DB}) "
                             "or 'sqlite' for a file in the temp dir")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help=f"flushed at start (default {DEFAULT_REDIS})")
    parser.add_argument("--wipe-servers", action=argparse.BooleanOptionalAction, default=None,
                        help="stop the servers and delete the engine's copies before rclone runs (default: "
                             "with --wedding real, whose full size would not fit on the disk twice)")
    parser.add_argument("--worker-script", default="manage.py",
                        help="what workers run instead of manage.py (experiments: a script that patches, then "
                             "calls Django's execute_from_command_line)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up on the engine after this many seconds")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run each worker under py-spy (pip install py-spy); collapsed stacks go to DIR "
                             "(timings and worker CPU then include py-spy)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run everything N times (fresh servers each time) and judge the median ratio")
    parser.add_argument("--profile-cpu", action="store_true",
                        help="with --profile: sample only threads on CPU (default: every thread, idle included)")
    args = parser.parse_args()
    if not RCLONE.exists():
        raise SystemExit(f"{RCLONE} is missing: pip install -r bench/requirements.txt")

    print_machine()
    runs = []
    for i in range(args.repeat):
        if args.repeat > 1:
            print(f"\n## run {i + 1} of {args.repeat}", flush=True)
        runs.append(one_run(args))
    if args.repeat > 1:
        for mode in runs[0]:
            values = [r[mode] for r in runs]
            print(f"\nratio WedBackup / rclone x3 {mode} over {len(values)} runs: "
                  f"{', '.join(f'{v:.2f}' for v in values)}; median {statistics.median(values):.2f}")
    sequential = [r["sequential"] for r in runs if "sequential" in r]
    met = not sequential or statistics.median(sequential) <= TARGET_RATIO
    return 0 if met else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: workers and servers stopped", file=sys.stderr)
        sys.exit(130)
