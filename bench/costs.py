"""Benchmark: the cost model and the optimiser over a fleet of ~1,000,000 assets in PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wedbackup .venv/bin/python bench/costs.py [--assets 1000000]

Builds the reference fleet (naive baseline, bulk_create) in a throw-away test database (test_<name>, dropped
at the end unless --keep), in a child process so its memory does not count; then, in this process, times
fleet_state() (the database aggregates) and optimise() and prints the time and the peak RSS.
Target (issue 7): under 30 s and under 1 GB RSS. Then the same with the providers' own lifecycle rules
(costs.tiering, issue 18): the rules, the object steps left to our workers and the requests they make, both ways.
Not run by the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import resource
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wedbackup.settings")

import django  # noqa: E402

django.setup()

from django.db import connections  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

ASSETS_PER_WEDDING = 120  # the mean of tests.integrations.fleet.MIX
TODAY = dt.date(2026, 6, 1)


def _build(weddings: int) -> None:
    from tests.integrations.fleet import build_fleet

    started = time.monotonic()
    counts = build_fleet(weddings, today=TODAY)
    print(f"built {counts['assets']:,} assets, {counts['replicas']:,} replicas in {counts['weddings']:,} weddings "
          f"in {time.monotonic() - started:.0f} s", flush=True)
    connections.close_all()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the test database (reuse it next time)")
    args = parser.parse_args()
    if connections["default"].vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL server")
    old = setup_databases(verbosity=0, interactive=False, keepdb=args.keep, serialized_aliases=())
    try:
        from backups.models import Asset

        if not Asset.objects.exists():
            connections.close_all()
            child = multiprocessing.get_context("fork").Process(target=_build,
                                                                args=(args.assets // ASSETS_PER_WEDDING,))
            child.start()
            child.join()
            if child.exitcode:
                sys.exit(f"building the fleet failed ({child.exitcode})")
        from costs.costing import costs_by_group, fleet_state, rules_by_plan
        from costs.optimizer import optimise
        from costs.tiering import RULE_REQUESTS, tiering_plan, worker_requests
        from costs.versions import current_catalog

        assets = Asset.objects.count()
        rss_before = _rss_mb()
        t0 = time.monotonic()
        catalog = current_catalog()
        fleet = fleet_state(catalog=catalog, today=TODAY)
        t1 = time.monotonic()
        current = sum(costs_by_group(catalog, fleet).values(), Decimal(0))
        proposals = optimise(fleet, catalog, rules_by_plan())
        t2 = time.monotonic()
        saving = sum((p.monthly_saving for p in proposals if p.kind in ("lifecycle", "provider_mix")), Decimal(0))
        t3 = time.monotonic()
        plan = tiering_plan(fleet, catalog, rules_by_plan())
        t4 = time.monotonic()
        ruled = sum(costs_by_group(catalog, plan.fleet).values(), Decimal(0)) - sum(
            (p.monthly_saving for p in plan.proposals if p.kind in ("lifecycle", "provider_mix")), Decimal(0))
        changes = sum(c["objects"] for p in proposals if p.kind in ("lifecycle", "provider_mix") for c in p.changes)
        left = sum(c["objects"] for p in plan.proposals if p.kind in ("lifecycle", "provider_mix") for c in p.changes)
        def steps_by(props) -> str:
            out: dict[str, int] = {}
            for p in props:
                for c in p.changes if p.kind in ("lifecycle", "provider_mix") else ():
                    key = f"{fleet.providers[c['provider']].kind} {c['action']}"
                    out[key] = out.get(key, 0) + c["objects"]
            return ", ".join(f"{k} {v:,}" for k, v in sorted(out.items()))

        ruled_requests = worker_requests(plan.proposals, fleet.providers) + RULE_REQUESTS * len(plan.rules)
        transitions = sum((r.transition_cost for r in plan.rules), Decimal(0))
        rules_text = "; ".join(
            f"{fleet.providers[r.provider_id].name}: " + ", ".join(f"{c} at {d} d" for d, c in r.rules[0].transitions)
            for r in plan.rules)
        rows = [("assets", f"{assets:,}"), ("cohorts", f"{len(fleet.cohorts):,}"),
                ("proposals", f"{len(proposals):,}"), ("model (DB aggregates)", f"{t1 - t0:.1f} s"),
                ("optimiser + pricing", f"{t2 - t1:.1f} s"), ("total", f"{t2 - t0:.1f} s"),
                ("peak RSS", f"{_rss_mb():.0f} MB (before: {rss_before:.0f} MB)"),
                ("monthly now -> after", f"${current:,.2f} -> ${current - saving:,.2f} "
                                         f"({100 * saving / current:.1f}% less)"),
                ("tiering plan with rules", f"{t4 - t3:.1f} s"),
                ("lifecycle rules", rules_text or "none"),
                ("per object: object steps", f"{changes:,} ({worker_requests(proposals, fleet.providers):,} requests "
                                              "by our workers)"),
                ("  by kind and action", steps_by(proposals)),
                ("with rules: object steps", f"{left:,} ({ruled_requests:,} requests by our workers)"),
                ("  by kind and action", steps_by(plan.proposals)),
                ("with rules: provider transitions", f"{sum(r.objects for r in plan.rules):,} "
                                                     f"(${transitions:,.2f} billed once)"),
                ("monthly after, with rules", f"${ruled:,.2f} ({100 * (current - ruled) / current:.1f}% less)")]
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
    finally:
        if not args.keep:
            teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
