"""The cost model's figures, stored: the console reads the latest and draws the history.

``costs.costing.costs_summary`` prices the whole fleet and runs the optimiser (tens of seconds at a million
assets), so it runs in a worker (hourly from ``console.cron``, shortly after an apply, or on the console's
"Refresh now")
and the pages read the stored result. Past days keep only their last snapshot: the history is one row
per day, bounded however often the job runs.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from django.db.models import Max
from django.db.models.functions import TruncDate
from django.utils import timezone

from wedbackup.queues import enqueue_soon

from .budget import cost_budget_check
from .costing import costs_summary
from .models import CostSnapshot

HISTORY_DAYS = 90


def cost_snapshot_take() -> CostSnapshot:
    """Run the cost model now and store its answer; thin out past days."""
    started = time.monotonic()
    summary = costs_summary()
    snapshot = CostSnapshot.objects.create(
        catalog_version=summary["catalog_version"], currency=summary["currency"],
        current_monthly=summary["current_monthly"], optimised_monthly=summary["optimised_monthly"],
        savings_by_kind={kind: str(amount) for kind, amount in summary["savings_by_kind"].items()},
        by_provider_class=[{**row, "monthly": str(row["monthly"])} for row in summary["by_provider_class"]],
        proposals=summary["proposals"], seconds=round(time.monotonic() - started, 3),
    )
    snapshots_prune()
    cost_budget_check(snapshot=snapshot)
    return snapshot


def cost_snapshot_soon() -> str:
    """After copies moved (an apply): the cost snapshot is taken again shortly."""
    return enqueue_soon(cost_snapshot_take, job_id="wedbackup-soon-cost-snapshot")


def snapshots_prune(today: dt.date | None = None) -> int:
    """Keep the last snapshot of each past day (and all of today's); returns how many were deleted."""
    start_of_today = timezone.make_aware(dt.datetime.combine(today or timezone.localdate(), dt.time()))
    past = CostSnapshot.objects.filter(taken_at__lt=start_of_today)
    keep = past.annotate(day=TruncDate("taken_at")).values("day").annotate(last=Max("pk")).values("last")
    deleted, _ = past.exclude(pk__in=keep).delete()
    return deleted


def cost_latest() -> dict | None:
    """The newest snapshot in the shape the console shows (Decimals back), or None before the first."""
    snapshot = CostSnapshot.objects.order_by("-taken_at").first()
    if snapshot is None:
        return None
    current, optimised = snapshot.current_monthly, snapshot.optimised_monthly
    return {
        "current_monthly": current, "optimised_monthly": optimised, "currency": snapshot.currency,
        "saving": current - optimised,
        "reduction_percent": 100 * (current - optimised) / current if current else Decimal(0),
        "savings_by_kind": {kind: Decimal(v) for kind, v in snapshot.savings_by_kind.items()},
        "by_provider_class": [{**row, "monthly": Decimal(row["monthly"])} for row in snapshot.by_provider_class],
        "notes": [row["note"] for row in snapshot.by_provider_class if row.get("note")],
        "catalog_version": snapshot.catalog_version, "proposals": snapshot.proposals,
        "taken_at": snapshot.taken_at, "seconds": snapshot.seconds,
    }


def cost_history(days: int = HISTORY_DAYS) -> list[CostSnapshot]:
    """Snapshots of the last ``days`` days, oldest first (one per past day after pruning)."""
    since = timezone.now() - dt.timedelta(days=days)
    return list(CostSnapshot.objects.filter(taken_at__gte=since).order_by("taken_at")
                .only("taken_at", "currency", "current_monthly", "optimised_monthly", "by_provider_class"))
