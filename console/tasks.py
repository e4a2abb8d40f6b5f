"""The console's jobs: the refresh of every stored figure the fleet pages read. The one place the console's RQ
entry points are defined (the recurring ones are registered with rq's cron scheduler in ``console.cron``)."""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.conf import settings
from django.utils import timezone

from backups.snapshots import fleet_health_refresh
from costs.models import CostSnapshot
from costs.snapshots import cost_snapshot_take
from providers.health import health_checks_prune

log = logging.getLogger(__name__)


def cost_snapshot_interval() -> int:
    return int(getattr(settings, "WEDBACKUP_COST_SNAPSHOT_INTERVAL", 3600))


def cost_snapshot_due(now: dt.datetime | None = None) -> bool:
    last = CostSnapshot.objects.order_by("-taken_at").values_list("taken_at", flat=True).first()
    return last is None or ((now or timezone.now()) - last).total_seconds() >= cost_snapshot_interval()


def snapshots_refresh(*, costs: bool | None = None) -> dict:
    """RQ entry (and ``manage.py refresh_snapshots``): refresh every wedding's stored health, the cost snapshot
    (when ``costs`` says so; when it is None, when the last one is older than its interval), and drop old
    health checks. Returns what was done, with timings."""
    started = time.monotonic()
    result: dict = {"weddings": fleet_health_refresh()}
    result["weddings_seconds"] = round(time.monotonic() - started, 2)
    if costs or (costs is None and cost_snapshot_due()):
        result["cost_snapshot"] = cost_snapshot_take().pk
        result["cost_seconds"] = round(time.monotonic() - started - result["weddings_seconds"], 2)
    result["health_checks_pruned"] = health_checks_prune()
    log.info("snapshots refreshed: %s", result)
    return result
