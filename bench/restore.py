"""Restore and deep verify against rclone on the same buckets (issue 18, items 1 and 2).

    .venv/bin/python bench/restore.py [--scale 0.25] [--repeat 3] [--gcs] [--no-kill]

The bench wedding of ``bench/backup.py`` (400 x 2 MB photos + 2 x 100 MB videos, random bytes; ``--scale``
shrinks every file) is imported and backed up by the real engine (in-process RQ worker, not timed) to aws_s3
(SeaweedFS) and azure_blob (Azurite), and with ``--gcs`` to the GCS emulator (its ~16 MB/s is the emulator's
limit, not ours). Then, per provider kind (the others disabled for the run) and with every provider enabled
(the best-replica choice), in turn and ``--repeat`` times:

- ``wedding_restore`` (what ``manage.py restore_wedding`` runs), in this process: wall time, CPU of this
  process (every thread), peak RSS growth over the process's RSS before the run (VmHWM reset), each server's CPU;
- ``rclone copy --transfers 8`` of the same bucket's ``weddings/<slug>`` into an empty folder (wait4: CPU, RSS);

every file of both sha256-checked against the catalogue. Item 2: ``wedding_verify(deep=True)`` (what
``manage.py verify_wedding --deep`` runs) against ``rclone check --download`` of the rclone copy against the
bucket. Last (unless ``--no-kill``): the preferred provider's server is SIGKILLed once a quarter of the files are
restored; the restore must finish from the next replica, every file once, no temporary file left.
Ratios are medians; the floor is the shortest wall time the CPUs allow (servers' CPU plus the client's over the
cores, never less than Azurite's single-threaded CPU; ``bench/backup.py``'s ``server_floor``). Exit 1 when a
target (restore <= 0.9 x rclone for S3 and Azure, verify <= 1.0 x) is not met. Database ``bench_restore``
(dropped and re-created), Redis db 3 (flushed). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))
from _servers import MB, ROOT, Servers, local_servers, peak_rss_kb, print_machine, reset_peak_rss, table  # noqa: E402
from backup import RCLONE, django_env, rclone_env, reset_database, server_floor, wedding_folder  # noqa: E402

RESTORE_TARGET, VERIFY_TARGET = 0.9, 1.0
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/bench_restore"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"
REMOTES = {"aws_s3": "wbs3", "azure_blob": "wbazure", "gcs": "wbgcs"}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rss_now_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MB):
            digest.update(chunk)
    return digest.hexdigest()


def check_tree(root: Path, expected: dict[str, str]) -> None:
    """Every expected file there with its sha256, and no stray file (a MANIFEST.json from rclone aside)."""
    found = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    if found != set(expected):
        raise SystemExit(f"{root}: {len(found ^ set(expected))} files missing or extra, e.g. "
                         f"{sorted(found ^ set(expected))[:3]}")
    bad = [rel for rel, sha in expected.items() if sha256_file(root / rel) != sha]
    if bad:
        raise SystemExit(f"{root}: {len(bad)} files differ from their sha256, e.g. {bad[:3]}")


def providers_create(servers: Servers, kinds: list[str]) -> list:
    from backups.models import BackupPolicy
    from providers.models import Provider

    made = {"aws_s3": lambda: ("bench-s3", "us-east-1", servers.s3_bucket("wb-restore-s3")),
            "azure_blob": lambda: ("bench-azure", "eastus", servers.azure_container("wb-restore-azure")),
            "gcs": lambda: ("bench-gcs", "us-central1", servers.gcs_bucket("wb-restore-gcs"))}
    out = []
    for kind in kinds:
        name, region, spec = made[kind]()
        out.append(Provider.objects.create(name=name, kind=kind, region=region, bucket=spec["bucket"],
                                           endpoint=spec["endpoint"], credentials=spec["credentials"],
                                           options=spec.get("options", {})))
    policy = BackupPolicy.default()
    policy.min_copies = policy.min_distinct_providers = len(kinds)
    policy.cross_region_copy = "off"
    policy.save()
    return out


def backed_up_wedding(folder: Path, providers: list):
    """Imported and backed up by the engine (one in-process RQ worker, burst); every replica verified."""
    import django_rq
    from django.conf import settings
    from rq import SimpleWorker

    from backups.ingest import wedding_import
    from backups.models import Replica
    from backups.tasks import backup_start

    report = wedding_import(path=folder, couple="Restore & Bench", date=dt.date.today() - dt.timedelta(days=30),
                            country="US")
    wedding = report.wedding
    started = time.perf_counter()
    backup_start(wedding=wedding)
    django_rq.get_worker(*settings.QUEUE_NAMES, worker_class=SimpleWorker).work(burst=True, with_scheduler=False)
    verified = Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED).count()
    if verified != len(providers) * wedding.assets.count():
        raise SystemExit(f"backup left {verified} of {len(providers) * wedding.assets.count()} replicas verified")
    print(f"# backed up {wedding.assets.count()} files to {len(providers)} providers in "
          f"{time.perf_counter() - started:.1f}s (not timed below)", flush=True)
    return wedding


def providers_enable(providers: list, only: str | None) -> None:
    from providers.models import Provider

    for p in providers:
        Provider.objects.filter(pk=p.pk).update(enabled=only is None or p.kind == only)


def restore_once(wedding, dest: Path, servers: Servers, expected: dict[str, str]) -> dict:
    from backups.restore import wedding_restore

    os.sync()
    before_cpu, before_servers, base_rss = cpu_self(), servers.cpu_by_server(), rss_now_kb()
    reset_peak_rss()
    started = time.perf_counter()
    report = wedding_restore(wedding=wedding, to=dest)
    wall = time.perf_counter() - started
    cpu, peak = cpu_self() - before_cpu, peak_rss_kb()
    by_server = {k: v - before_servers.get(k, 0.0) for k, v in servers.cpu_by_server().items()}
    if report.failed:
        raise SystemExit(f"restore failed for {len(report.failed)} files: {list(report.failed.items())[:3]}")
    check_tree(dest, expected)
    return {"wall": wall, "cpu": cpu, "rss_mb": peak / 1024, "growth_mb": (peak - base_rss) / 1024,
            "servers": by_server}


def rclone_once(argv: list[str], env: dict[str, str], servers: Servers) -> dict:
    os.sync()
    before_servers = servers.cpu_by_server()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env={**os.environ, **env})
    try:
        _, status, ru = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    by_server = {k: v - before_servers.get(k, 0.0) for k, v in servers.cpu_by_server().items()}
    os.sync()  # rclone leaves its files in the page cache; a restore fsyncs each file before it says so
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024, "growth_mb": None,
            "servers": by_server, "code": proc.returncode, "synced": time.perf_counter() - started}


def verify_once(wedding, servers: Servers) -> dict:
    from backups.verify import wedding_verify

    os.sync()
    before_cpu, before_servers, base_rss = cpu_self(), servers.cpu_by_server(), rss_now_kb()
    reset_peak_rss()
    started = time.perf_counter()
    report = wedding_verify(wedding=wedding, deep=True, clean_orphans=False)
    wall = time.perf_counter() - started
    cpu, peak = cpu_self() - before_cpu, peak_rss_kb()
    by_server = {k: v - before_servers.get(k, 0.0) for k, v in servers.cpu_by_server().items()}
    if report.mismatched or report.unreachable or report.ok != report.checked:
        raise SystemExit(f"deep verify found problems: {report.as_dict()}")
    return {"wall": wall, "cpu": cpu, "rss_mb": peak / 1024, "growth_mb": (peak - base_rss) / 1024,
            "servers": by_server, "checked": report.checked}


def median_row(label: str, runs: list[dict]) -> tuple[list[str], dict]:
    walls = [r["wall"] for r in runs]
    med = {"wall": statistics.median(walls), "min": min(walls), "cpu": statistics.median(r["cpu"] for r in runs),
           "rss_mb": max(r["rss_mb"] for r in runs),
           "servers": {k: statistics.median(r["servers"].get(k, 0.0) for r in runs) for k in runs[0]["servers"]}}
    growth = [r["growth_mb"] for r in runs if r["growth_mb"] is not None]
    rss = f"{med['rss_mb']:.0f}" + (f" (+{max(growth):.0f})" if growth else "")
    row = [label, f"{med['wall']:.2f}", f"{med['min']:.2f}", f"{med['cpu']:.2f}", rss,
           f"{sum(med['servers'].values()):.2f}"]
    return row, med


def verify_compare(wedding, servers: Servers, kinds: list[str], by_kind: dict, workdir: Path,
                   rc_env: dict[str, str], args) -> tuple[list[list[str]], bool]:
    """Deep verify of every replica (all providers) against ``rclone check --download`` of each bucket against
    its rclone copy, one after another (the sum) as a user would run them."""
    mine, theirs = [], []
    before = load()
    for _ in range(args.repeat):
        mine.append(verify_once(wedding, servers))
        runs = []
        for kind in kinds:
            remote = f"{REMOTES[kind]}:{by_kind[kind].bucket}/weddings/{wedding.slug}"
            rc = rclone_once([str(RCLONE), "check", str(workdir / f"rc-{kind}"), remote, "--download", "--one-way",
                              "--exclude", "MANIFEST.json", "--transfers", str(args.transfers), "-q"], rc_env, servers)
            if rc["code"]:
                raise SystemExit(f"rclone check --download against {remote} exited {rc['code']}")
            runs.append(rc)
        theirs.append({"wall": sum(r["wall"] for r in runs), "cpu": sum(r["cpu"] for r in runs),
                       "rss_mb": max(r["rss_mb"] for r in runs), "growth_mb": None,
                       "servers": {k: sum(r["servers"].get(k, 0.0) for r in runs) for k in runs[0]["servers"]}})
    after = load()
    row, med = median_row(f"verify_wedding --deep, {' + '.join(kinds)} ({mine[0]['checked']} replicas)", mine)
    rrow, rmed = median_row(f"rclone check --download x{len(kinds)}, one after another", theirs)
    ratio = med["wall"] / rmed["wall"]
    rows = [[*row, f"{ratio:.2f}", f"{server_floor(med['servers'], med['cpu'])[1]:.2f}", f"{before} / {after}"],
            [*rrow, "", f"{server_floor(rmed['servers'], rmed['cpu'])[1]:.2f}", ""]]
    return rows, ratio <= VERIFY_TARGET


def kill_drill(wedding, servers: Servers, providers: list, dest: Path, expected: dict[str, str]) -> list[str]:
    """SIGKILL the preferred provider's server once a quarter of the files are restored."""
    from backups.restore import wedding_restore

    providers_enable(providers, None)
    preferred = min(providers, key=lambda p: p.name)  # replicas_best_first's order among healthy providers
    server = servers.running["azurite" if preferred.kind == "azure_blob" else
                             "seaweedfs" if preferred.kind == "aws_s3" else "gcs"]
    seen: list[str] = []
    lock, quarter, killed = threading.Lock(), len(expected) // 4, threading.Event()

    def progress(asset, ok: bool) -> None:
        with lock:
            seen.append(asset.relative_path if ok else f"FAILED {asset.relative_path}")
            if len(seen) == quarter and not killed.is_set():
                os.killpg(server.proc.pid, signal.SIGKILL)
                killed.set()

    started = time.perf_counter()
    report = wedding_restore(wedding=wedding, to=dest, progress=progress)
    wall = time.perf_counter() - started
    leftovers = [p.name for p in dest.rglob(".restore-*")]
    problems = []
    if not killed.is_set():
        problems.append("the server was never killed")
    if report.failed:
        problems.append(f"{len(report.failed)} files failed, e.g. {list(report.failed.items())[:2]}")
    if sorted(seen) != sorted(set(seen)) or len(seen) != len(expected):
        problems.append(f"progress heard {len(seen)} outcomes ({len(set(seen))} distinct) for {len(expected)} files")
    if leftovers:
        problems.append(f"temporary files left: {leftovers[:3]}")
    if not problems:
        check_tree(dest, expected)
    return [f"kill drill: {preferred.name} ({preferred.kind}) server SIGKILLed "
            f"after {quarter} of {len(expected)} files; restore finished in {wall:.1f}s, {len(report.restored)} "
            f"restored, {report.fallbacks} from the next replica, {len(report.failed)} failed, "
            f"{len(leftovers)} temporary files left; every file sha256-checked: "
            + ("OK" if not problems else "PROBLEMS: " + "; ".join(problems))]


def gcs_rclone_env(servers: Servers) -> dict[str, str]:
    server = servers.gcs()
    return {"RCLONE_CONFIG_WBGCS_TYPE": "google cloud storage", "RCLONE_CONFIG_WBGCS_ANONYMOUS": "true",
            "RCLONE_CONFIG_WBGCS_ENDPOINT": str(server.extra["endpoint"]),
            "RCLONE_CONFIG_WBGCS_PROJECT_NUMBER": str(server.extra["project"])}


def main() -> int:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every file size (0.25 = 250 MB)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (median and min shown)")
    parser.add_argument("--gcs", action="store_true", help="also the GCS emulator (emulator-bound, slow)")
    parser.add_argument("--no-kill", action="store_true", help="skip the preferred-provider-killed drill")
    parser.add_argument("--no-verify", action="store_true", help="skip item 2 (deep verify vs rclone check)")
    parser.add_argument("--transfers", type=int, default=8, help="rclone --transfers (default 8, as in the issue)")
    parser.add_argument("--database-url", default=DEFAULT_DB, help=f"dropped and re-created (default {DEFAULT_DB})")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help=f"flushed at start (default {DEFAULT_REDIS})")
    args = parser.parse_args()
    if not RCLONE.exists():
        raise SystemExit(f"{RCLONE} is missing: pip install -r bench/requirements.txt")
    print_machine()
    kinds = ["aws_s3", "azure_blob", *(["gcs"] if args.gcs else [])]
    restore_rows, verify_rows, notes, met = [], [], [], True
    with tempfile.TemporaryDirectory(prefix="wb-bench-restore-") as tmp, local_servers(Path(tmp)) as servers:
        workdir = Path(tmp)
        files, size = wedding_folder(workdir / "wedding", args.scale)
        print(f"# wedding: {files} files, {size / MB:.0f} MB (scale {args.scale})", flush=True)
        env = django_env(workdir, reset_database(args.database_url, workdir), args.redis_url)
        os.environ.update(env)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
        import django

        django.setup()
        import django_rq

        django_rq.get_connection("default").flushdb()
        providers = providers_create(servers, kinds)
        wedding = backed_up_wedding(workdir / "wedding", providers)
        from backups.models import Replica

        expected = {a.relative_path: a.sha256 for a in wedding.assets.all()}
        rc_env = {**rclone_env(servers, workdir), **(gcs_rclone_env(servers) if args.gcs else {})}
        prefix = f"weddings/{wedding.slug}/"
        by_kind = {p.kind: p for p in providers}
        sources = [*kinds, None]  # None: every provider enabled, the best replica per file
        for kind in sources:
            providers_enable(providers, kind)
            best = kind or min(providers, key=lambda p: p.name).kind
            remote = f"{REMOTES[best]}:{by_kind[best].bucket}/weddings/{wedding.slug}"
            # rclone's tree is the layout (<kind>/<relative path>): compare it under the same names
            keys = dict(Replica.objects.filter(asset__wedding=wedding, provider=by_kind[best])
                        .values_list("object_key", "asset__sha256"))
            rc_expected = {key[len(prefix):]: sha for key, sha in keys.items()}
            ours, theirs = [], []
            u_before = load()
            for i in range(args.repeat):
                dest = workdir / f"out-{i}"
                ours.append(restore_once(wedding, dest, servers, expected))
                shutil.rmtree(dest)
                rc = rclone_once([str(RCLONE), "copy", remote, str(dest), "--transfers", str(args.transfers), "-q"],
                                 rc_env, servers)
                if rc["code"]:
                    raise SystemExit(f"rclone copy from {remote} exited {rc['code']}")
                check_tree(dest, rc_expected)
                theirs.append(rc)
                if i == args.repeat - 1 and kind is not None:
                    dest.rename(workdir / f"rc-{kind}")  # rclone check's local side, below
                else:
                    shutil.rmtree(dest)
            u_after = load()
            label = kind or f"best replica ({best})"
            row, med = median_row(f"restore_wedding, {label}", ours)
            rrow, rmed = median_row(f"rclone copy --transfers {args.transfers}, {best}", theirs)
            ratio = med["wall"] / rmed["wall"]
            floor = server_floor(med["servers"], med["cpu"])[1]
            synced = statistics.median(r["synced"] for r in theirs)
            restore_rows += [[*row, f"{ratio:.2f}", f"{floor:.2f}", f"{u_before} / {u_after}"],
                             [*rrow, "", f"{server_floor(rmed['servers'], rmed['cpu'])[1]:.2f}", ""],
                             ["  rclone copy, then sync (durable, as the restore)", f"{synced:.2f}",
                              f"{min(r['synced'] for r in theirs):.2f}", "", "", "", f"{med['wall'] / synced:.2f}",
                              "", ""]]
            if kind in ("aws_s3", "azure_blob") and ratio > RESTORE_TARGET:
                met = False
                notes.append(f"restore from {kind}: {ratio:.2f} x rclone, target {RESTORE_TARGET}: NOT met")
            print(f"# {label} done (load {u_after})", flush=True)
        if not args.no_verify:
            providers_enable(providers, None)
            verify_rows, ok = verify_compare(wedding, servers, kinds, by_kind, workdir, rc_env, args)
            met &= ok
            if not ok:
                notes.append(f"deep verify: over {VERIFY_TARGET} x the rclone checks one after another: NOT met")
        if not args.no_kill:
            notes += kill_drill(wedding, servers, providers, workdir / "killed", expected)
    header = ["run", "wall s (median)", "min", "client CPU s", "peak RSS MB (+growth)", "servers CPU s", "ratio",
              "floor s", "load before / after"]
    print(f"\n## restore: {files} files, {size / MB:.0f} MB, {args.repeat} runs each, side by side")
    print(table(restore_rows, header))
    if verify_rows:
        print(f"\n## deep verify: the same wedding, {args.repeat} runs each")
        print(table(verify_rows, header))
    print(f"\n({os.cpu_count()} CPUs shared by the client and the servers; ratio = median wall / rclone's median; "
          "floor = max((servers + client CPU) / CPUs, Azurite's CPU); RSS growth = peak over the process's RSS "
          "before the run)")
    for note in notes:
        print(note)
    return 0 if met and not any("PROBLEMS" in n for n in notes) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped", file=sys.stderr)
        sys.exit(130)
