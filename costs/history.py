"""Cost history for past days, computed from the data (the demo's, or a fleet imported with its past).

A snapshot for a past day D prices the weddings held by then (dated on or before D) as they are stored
now, with D's ages, and runs the optimiser on them: what the cost model would have said that day, had
the copies been placed then as they are today. It cannot know copies that have since moved or gone, so
such snapshots are marked in ``catalog_version`` and only days without a snapshot get one.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

from django.utils import timezone

from backups.models import Wedding

from .costing import costs_by_group, duplicates, fixed_charges, fleet_state, rules_by_plan
from .models import CostSnapshot
from .optimizer import optimise
from .snapshots import HISTORY_DAYS
from .versions import current_catalog

BACKFILLED = "backfilled"


def _snapshot_for(day: dt.date, wedding_ids: list[int], catalog) -> CostSnapshot:
    fleet = fleet_state(catalog=catalog, wedding_ids=wedding_ids, today=day)
    held: dict[int, int] = defaultdict(int)
    for cohort in fleet.cohorts:
        for group in cohort.copies:
            held[group.provider_id] += group.bytes
    # Minimums and seats depend on what each account held that day, not today.
    fleet.providers = {pid: replace(p, stored_bytes=held.get(pid, 0)) for pid, p in fleet.providers.items()}
    rows: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for (pid, cls), monthly in costs_by_group(catalog, fleet).items():
        rows[(fleet.providers[pid].name, cls)] += monthly
    for pid, charge in fixed_charges(catalog, fleet).items():
        rows[(fleet.providers[pid].name, charge.label)] += charge.monthly
    current = sum(rows.values(), Decimal(0))
    proposals = optimise(fleet, catalog, rules_by_plan(), duplicates=duplicates(wedding_ids))
    savings: dict[str, Decimal] = defaultdict(Decimal)
    for p in proposals:
        savings[p.kind] += p.monthly_saving
    taken = timezone.make_aware(dt.datetime.combine(day, dt.time(23, 0)))
    return CostSnapshot(
        taken_at=taken, catalog_version=f"{catalog.version} {BACKFILLED}"[:80], currency="USD",
        current_monthly=current, optimised_monthly=current - sum(savings.values(), Decimal(0)),
        savings_by_kind={k: str(v) for k, v in savings.items()}, proposals=len(proposals),
        by_provider_class=[{"provider": n, "storage_class": c, "monthly": str(m)}
                           for (n, c), m in sorted(rows.items())],
    )


def cost_history_backfill(*, days: int = HISTORY_DAYS, every: int = 7, today: dt.date | None = None) -> int:
    """One snapshot every ``every`` days over the last ``days``, for days that have none; returns how many."""
    today = today or timezone.localdate()
    catalog = current_catalog()
    have = {timezone.localdate(t) for t in CostSnapshot.objects.filter(
        taken_at__gte=timezone.now() - dt.timedelta(days=days + 1)).values_list("taken_at", flat=True)}
    made = []
    for back in range(days, 0, -every):
        day = today - dt.timedelta(days=back)
        ids = list(Wedding.objects.filter(date__lte=day).values_list("pk", flat=True))
        if day in have or not ids:
            continue
        made.append(_snapshot_for(day, ids, catalog))
    CostSnapshot.objects.bulk_create(made)
    return len(made)
