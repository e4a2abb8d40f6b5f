"""Benchmark: every console page against a large fleet (issue 8: 5,000 weddings, 1,000,000 assets, < 300 ms).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wedbackup .venv/bin/python bench/console.py [--keep]

Seeds a throw-away test database (test_<name>; kept with --keep and reused next time if it already holds
the fleet): the reference fleet of tests.integrations.fleet scaled to ~1M assets and ~3M verified replicas,
30 days of health checks every 30 s per provider, 20,000 past jobs, the optimiser's proposals. Then runs the
snapshot refresh the workers run periodically (timed), and requests each page in this process with Django's
test client as a staff user: server time (median and worst of --repeat runs) and query count. Exit 1 when
a page's median is over the budget. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wedbackup.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

import django  # noqa: E402

django.setup()

from django.db import connection, connections  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases  # noqa: E402

WEDDINGS = 5_000
TARGET_ASSETS = 1_000_000
MEAN_ASSETS = 120  # tests.integrations.fleet.MIX
BUDGET_MS = 300


def seed(weddings: int, assets: int) -> None:
    """Each part only when missing, so an interrupted seed resumes where it stopped."""
    from backups.models import AuditEvent, BackupJob, Wedding
    from costs.models import Optimization
    from costs.proposals import optimizations_refresh
    from providers.models import ProviderHealthCheck
    from tests.integrations.fleet import build_fleet

    if Wedding.objects.count() < weddings:
        started = time.monotonic()
        counts = build_fleet(weddings, scale=assets / (weddings * MEAN_ASSETS))
        print(f"fleet: {counts['assets']:,} assets, {counts['replicas']:,} replicas in {counts['weddings']:,} "
              f"weddings ({time.monotonic() - started:.0f} s)", flush=True)
    if not ProviderHealthCheck.objects.exists():
        table = ProviderHealthCheck._meta.db_table
        with connection.cursor() as cur:  # 30 days of probes every 30 s, ~2 % failed
            cur.execute(f"""
                INSERT INTO {table} (provider_id, checked_at, source, ok, latency_ms, error)
                SELECT p.id, now() - make_interval(secs => s * 30), 'probe', (s % 50) <> 0, 20 + (s % 97),
                       CASE WHEN s % 50 = 0 THEN 'timeout' ELSE '' END
                FROM providers_provider p, generate_series(0, 30 * 2880) s""")  # noqa: S608
    if not BackupJob.objects.exists():
        ids = list(Wedding.objects.values_list("pk", flat=True))
        statuses = [BackupJob.Status.SUCCEEDED] * 8 + [BackupJob.Status.FAILED, BackupJob.Status.PARTIAL]
        BackupJob.objects.bulk_create([
            BackupJob(wedding_id=ids[i % len(ids)], kind=BackupJob.Kind.BACKUP, status=statuses[i % len(statuses)],
                      files_planned=200, files_done=200, error_summary="" if i % 10 < 8 else "2 files failed")
            for i in range(20_000)], batch_size=5_000)
    if not AuditEvent.objects.filter(action="asset.download").exists():
        table = AuditEvent._meta.db_table
        with connection.cursor() as cur:  # 200,000 downloads spread over the fleet: the timeline reads the audit
            cur.execute(f"""
                INSERT INTO {table} (at, actor_label, action, target, details)
                SELECT now() - make_interval(mins => s), 'bench', 'asset.download',
                       'asset:' || w.slug || '/photo/' || s || '.jpg', '{{"provider": "s3", "fallbacks": 0}}'
                FROM generate_series(1, 200000) s
                JOIN backups_wedding w ON w.id = (SELECT min(id) FROM backups_wedding) + s % {weddings}""")  # noqa: S608
    if not Optimization.objects.exists():
        started = time.monotonic()  # measure=False: the seeded replicas live on no server to sample bytes from
        made = optimizations_refresh(measure=False)
        print(f"optimiser: {len(made):,} proposals ({time.monotonic() - started:.0f} s)", flush=True)
    busy_wedding()
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def busy_wedding() -> None:
    """The largest wedding gets a long story for its timeline: 20,000 downloads and 2,000 jobs over 90 days, and its
    copies scrubbed across those days (each source of the timeline then has far more rows than a page shows)."""
    from django.db.models import Count

    from backups.models import Asset, AuditEvent, BackupJob, Replica, Wedding

    biggest = Asset.objects.values("wedding").annotate(n=Count("id")).order_by("-n").first()["wedding"]
    wedding = Wedding.objects.get(pk=biggest)
    if BackupJob.objects.filter(wedding=wedding).count() >= 2_000:
        return
    table, jobs = AuditEvent._meta.db_table, BackupJob._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"""
            INSERT INTO {table} (at, actor_label, action, target, details)
            SELECT now() - make_interval(mins => s * 6), 'bench', 'asset.download',
                   'asset:' || %s || '/photo/busy-' || s || '.jpg', '{{"provider": "s3", "fallbacks": 0}}'
            FROM generate_series(1, 20000) s""", [wedding.slug])  # noqa: S608
        cur.execute(f"""
            INSERT INTO {jobs} (wedding_id, kind, status, files_planned, files_done, files_failed, bytes_planned,
                                bytes_done, bytes_failed, rq_job_id, queue, params, result, created, error_summary)
            SELECT %s, 'backup', 'succeeded', 10, 10, 0, 0, 0, 0, '', 'default', '{{}}', '{{}}',
                   now() - make_interval(mins => s * 60), ''
            FROM generate_series(1, 2000) s""", [wedding.pk])  # noqa: S608
        cur.execute(f"""
            UPDATE {Replica._meta.db_table} r SET scrubbed_at = now() - make_interval(days => (r.id %% 90)::int)
            FROM {Asset._meta.db_table} a WHERE r.asset_id = a.id AND a.wedding_id = %s""", [wedding.pk])  # noqa: S608


def refresh() -> None:
    try:
        from console.tasks import snapshots_refresh
    except ImportError:  # before snapshots existed: pages computed everything live
        return
    started = time.monotonic()
    result = snapshots_refresh(costs=True)
    print(f"snapshot refresh (the periodic job): {time.monotonic() - started:.1f} s {result}", flush=True)


def pages() -> list[tuple[str, str]]:
    from django.db.models import Count

    from backups.models import Asset, BackupJob, Wedding
    from providers.models import Provider

    biggest = (Asset.objects.values("wedding").annotate(n=Count("id")).order_by("-n").first() or {}).get("wedding")
    slug = Wedding.objects.get(pk=biggest).slug
    month = Wedding.objects.order_by("pk").first().date
    provider = Provider.objects.order_by("pk").first().pk
    job = BackupJob.objects.order_by("-pk").first().pk
    return [
        ("overview", "/"),
        ("weddings", "/weddings/"),
        ("weddings page 150", "/weddings/?page=150"),
        ("weddings at risk", "/weddings/?status=at-risk"),
        ("weddings search", "/weddings/?q=Couple+42&plan=standard"),
        ("wedding detail (largest)", f"/weddings/{slug}/"),
        ("wedding grid page 2 (largest)", f"/weddings/{slug}/?photos=2"),
        ("wedding timeline (largest)", f"/weddings/{slug}/timeline/"),
        ("providers", "/providers/"),
        ("provider 24h", f"/providers/{provider}/"),
        ("provider 30d", f"/providers/{provider}/?range=30d"),
        ("costs", "/costs/"),
        ("costs page 3", "/costs/?page=3"),
        ("jobs", "/jobs/"),
        ("job json", f"/jobs/{job}.json"),
        ("search couple", "/search/?q=Couple+4242"),
        ("search couple, typo", "/search/?q=Cuple+4242"),
        (f"search month ({month:%Y-%m})", f"/search/?q={month:%Y-%m}"),
        ("search file name (one per wedding)", "/search/?q=00042.jpg"),
        ("search broad (every photo), page 3", "/search/?q=photo&fpage=3"),
        ("search no match", "/search/?q=first-dance"),
    ]


def measure(repeat: int, only: str = "") -> bool:
    from django.contrib.auth import get_user_model
    from django.test import Client

    # A superuser: every console page needs a named permission (wedbackup.web.page).
    user, _ = get_user_model().objects.update_or_create(username="bench",
                                                        defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    ok = True
    print("\n| page | median ms | worst ms | queries |\n|---|---:|---:|---:|")
    for name, url in pages():
        if only not in name:
            continue
        times = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        median = statistics.median(times)
        ok &= median < BUDGET_MS
        flag = "" if median < BUDGET_MS else " **over**"
        print(f"| {name} | {median:.0f}{flag} | {max(times):.0f} | {len(ctx.captured_queries)} |", flush=True)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weddings", type=int, default=WEDDINGS)
    parser.add_argument("--assets", type=int, default=TARGET_ASSETS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database (and reuse a seeded one)")
    parser.add_argument("--only", default="", help="only the pages whose name contains this (e.g. search)")
    args = parser.parse_args()
    if connections["default"].vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL server")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    # serialized_aliases=(): no JSON dump of millions of rows for rollback emulation we never use
    old = setup_databases(verbosity=0, interactive=False, keepdb=args.keep, serialized_aliases=())
    try:
        seed(args.weddings, args.assets)
        refresh()
        ok = measure(args.repeat, args.only)
    finally:
        connections.close_all()
        if not args.keep:
            teardown_databases(old, verbosity=0)
    print(f"\nbudget {BUDGET_MS} ms per page (median): {'met' if ok else 'NOT met'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
