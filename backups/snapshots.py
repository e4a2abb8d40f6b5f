"""Per-wedding protection and usage, computed in the database and stored for the console's fleet pages.

Counting protection live means grouping every asset with every replica: fine for one wedding, seconds for
a million assets. So the fleet pages (overview, weddings list, providers) read WeddingHealth and
WeddingUsage, which this module refreshes: for one wedding at the end of each job on it, for every wedding
when a provider's status changes, and every few minutes (``console.cron``). The definition of "at risk"
is ``queries.asset_health``'s, so the stored answer and the wedding page's live one cannot disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from wedbackup.queues import enqueue_soon

from .models import Replica, Wedding, WeddingHealth, WeddingUsage
from .queries import asset_health, policy_rules
from .rpo import weddings_rpo

log = logging.getLogger(__name__)
CHUNK = 250  # weddings per transaction in a fleet refresh: a few seconds of locks at most
HEALTH_FIELDS = ["files", "bytes", "good_copies", "assets_at_risk", "bytes_at_risk", "at_risk", "last_protected_at",
                 "oldest_unprotected_at", "rpo_p95_seconds", "refreshed_at"]


def _health_rows(wedding_ids: list[int], rules: dict) -> dict[int, tuple]:
    """wedding id -> (files, bytes, good copies, assets at risk, bytes at risk): one grouped query."""
    per_asset = asset_health(rules).filter(wedding_id__in=wedding_ids).values(
        "wedding_id", "size", "good_copies", "at_risk")
    sql, params = per_asset.query.sql_with_params()
    columns = ("COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(good_copies), 0), COUNT(*) FILTER (WHERE at_risk),"
               " COALESCE(SUM(size) FILTER (WHERE at_risk), 0)")
    grouped = f"SELECT wedding_id, {columns} FROM ({sql}) AS per_asset GROUP BY wedding_id"  # noqa: S608 (ORM SQL)
    with connection.cursor() as cursor:
        cursor.execute(grouped, params)
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _usage_rows(wedding_ids: list[int]) -> list[WeddingUsage]:
    verified = Q(status=Replica.Status.VERIFIED)
    rows = (Replica.objects.filter(asset__wedding_id__in=wedding_ids).values("asset__wedding_id", "provider_id")
            .annotate(verified=Count("id", filter=verified), other=Count("id", filter=~verified),
                      bytes=Coalesce(Sum("size", filter=verified), 0))
            .order_by())
    return [WeddingUsage(wedding_id=r["asset__wedding_id"], provider_id=r["provider_id"],
                         verified_replicas=r["verified"], other_replicas=r["other"], verified_bytes=r["bytes"])
            for r in rows]


def weddings_refresh(wedding_ids: Iterable[int], *, rules: dict | None = None) -> int:
    """Recompute and store these weddings' health and usage; returns how many were refreshed.

    The wedding rows are locked first (in id order), so two refreshes of one wedding run one after the
    other and the last to run, which saw the newest replicas, wins."""
    rules = rules or policy_rules()
    with transaction.atomic():
        ids = list(Wedding.objects.select_for_update().filter(pk__in=list(wedding_ids)).order_by("pk")
                   .values_list("pk", flat=True))
        if not ids:
            return 0
        health = _health_rows(ids, rules)
        rpo = weddings_rpo(ids)
        now = timezone.now()
        rows = []
        for pk in ids:
            files, size, good, risky, risky_bytes = health.get(pk, (0, 0, 0, 0, 0))
            rows.append(WeddingHealth(wedding_id=pk, files=files, bytes=size, good_copies=good, assets_at_risk=risky,
                                      bytes_at_risk=risky_bytes, at_risk=risky > 0, refreshed_at=now,
                                      **rpo.get(pk, {})))
        WeddingHealth.objects.bulk_create(rows, update_conflicts=True, unique_fields=["wedding"],
                                          update_fields=HEALTH_FIELDS)
        WeddingUsage.objects.filter(wedding_id__in=ids).delete()
        WeddingUsage.objects.bulk_create(_usage_rows(ids), batch_size=1000)
    return len(ids)


def wedding_refresh(wedding: Wedding | int) -> None:
    """Refresh one wedding at the end of a job on it. Never raises: a failure here must not fail the job,
    and the periodic refresh repairs what it missed."""
    try:
        weddings_refresh([getattr(wedding, "pk", wedding)])
    except Exception:
        log.exception("refreshing the stored health of wedding %s failed", getattr(wedding, "pk", wedding))


def fleet_health_refresh(chunk: int = CHUNK) -> int:
    """Every wedding, a chunk at a time (one policy read for all); returns how many."""
    rules = policy_rules()
    ids = list(Wedding.objects.order_by("pk").values_list("pk", flat=True))
    return sum(weddings_refresh(ids[i:i + chunk], rules=rules) for i in range(0, len(ids), chunk))


def fleet_health_soon(**_) -> str:
    """After a provider's status changed: every wedding's stored protection is recomputed shortly. Also the
    receiver of ``providers.signals.provider_status_changed``."""
    return enqueue_soon(fleet_health_refresh, job_id="wedbackup-soon-fleet-health")


def fleet_refreshed_at():
    """When the oldest stored figure was computed (None before the first refresh)."""
    return WeddingHealth.objects.aggregate(at=Min("refreshed_at"))["at"]


def fleet_summary() -> dict:
    """Protected vs at-risk weddings (those with files), files and bytes from the stored health (one query).
    ``refreshed_at`` is the oldest figure's time."""
    risky = Q(at_risk=True)
    totals = WeddingHealth.objects.aggregate(
        weddings=Count("pk", filter=Q(files__gt=0)), weddings_at_risk=Count("pk", filter=risky),
        assets=Coalesce(Sum("files"), 0), assets_at_risk=Coalesce(Sum("assets_at_risk"), 0),
        bytes=Coalesce(Sum("bytes"), 0), bytes_at_risk=Coalesce(Sum("bytes_at_risk"), 0),
        refreshed_at=Min("refreshed_at"), oldest_unprotected_at=Min("oldest_unprotected_at"),
        worst_rpo_p95_seconds=Max("rpo_p95_seconds"),
    )
    totals["assets_protected"] = totals["assets"] - totals["assets_at_risk"]
    totals["bytes_protected"] = totals["bytes"] - totals["bytes_at_risk"]
    totals["weddings_protected"] = totals["weddings"] - totals["weddings_at_risk"]
    return totals
