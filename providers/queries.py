"""The console's read side for providers: status tiles, capacity, health timeline, failovers."""

from __future__ import annotations

import datetime as dt

from django.db.models import Avg, Count, Exists, F, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDay, TruncHour, TruncMinute
from django.utils import timezone

from .models import FailoverEvent, Provider, ProviderHealthCheck

# ?range= on the provider page: how far back, and the bucket each point of the timeline stands for.
RANGES = {
    "6h": (dt.timedelta(hours=6), TruncMinute),
    "24h": (dt.timedelta(hours=24), TruncHour),
    "7d": (dt.timedelta(days=7), TruncHour),
    "30d": (dt.timedelta(days=30), TruncDay),
}
DEFAULT_RANGE = "24h"


def providers_with_usage() -> QuerySet[Provider]:
    """Providers with verified replica count and bytes (as stored by backups.snapshots, so a million replicas
    are not counted per page view), last probe, and an open failover flag (one query)."""
    last_check = ProviderHealthCheck.objects.filter(provider=OuterRef("pk")).order_by("-checked_at")
    return Provider.objects.annotate(
        verified_replicas=Coalesce(Sum("usage__verified_replicas"), 0),
        other_replicas=Coalesce(Sum("usage__other_replicas"), 0),
        used_bytes=Coalesce(Sum("usage__verified_bytes"), 0),
        last_checked_at=Subquery(last_check.values("checked_at")[:1]),
        last_ok=Subquery(last_check.values("ok")[:1]),
        last_latency_ms=Subquery(last_check.values("latency_ms")[:1]),
        failing_over=Exists(FailoverEvent.objects.filter(provider=OuterRef("pk"), resolved_at__isnull=True)),
    ).order_by("name")


def provider_usage(provider_id: int) -> Provider:
    return providers_with_usage().get(pk=provider_id)


def health_timeline(provider: Provider, range_name: str = DEFAULT_RANGE, now: dt.datetime | None = None) -> list[dict]:
    """Checks bucketed over time: average and worst latency, checks and failures per bucket (one query)."""
    span, trunc = RANGES.get(range_name, RANGES[DEFAULT_RANGE])
    since = (now or timezone.now()) - span
    return list(
        ProviderHealthCheck.objects.filter(provider=provider, checked_at__gte=since)
        .annotate(bucket=trunc("checked_at"))
        .values("bucket")
        .annotate(avg_latency=Avg("latency_ms"), max_latency=Max("latency_ms"), checks=Count("id"),
                  failures=Count("id", filter=Q(ok=False)))
        .order_by("bucket")
    )


def recent_failures(provider: Provider, limit: int = 10) -> list[ProviderHealthCheck]:
    return list(provider.health_checks.filter(ok=False)[:limit])


def failover_events(provider: Provider, limit: int = 20) -> list[FailoverEvent]:
    return list(provider.failover_events.annotate(duration=F("resolved_at") - F("started_at"))[:limit])


def provider_detail(provider_id: int, range_name: str = DEFAULT_RANGE) -> dict:
    provider = provider_usage(provider_id)
    capacity = provider.capacity_bytes
    range_name = range_name if range_name in RANGES else DEFAULT_RANGE
    now = timezone.now()
    return {
        "provider": provider,
        "range": range_name,
        "ranges": list(RANGES),
        "window": (now - RANGES[range_name][0], now),
        "timeline": health_timeline(provider, range_name, now=now),
        "failures": recent_failures(provider),
        "failovers": failover_events(provider),
        "capacity_percent": min(100, int(100 * provider.used_bytes / capacity)) if capacity else None,
    }
