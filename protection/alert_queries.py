"""What the console shows of alerts: the open ones, the recently resolved ones, and how many are open."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from .models import Alert

RESOLVED_DAYS = 7
RESOLVED_LIMIT = 50


def alerts_open_count() -> int:
    return Alert.objects.filter(resolved_at__isnull=True).count()


def alerts_page() -> dict:
    """Open alerts (newest first) and those resolved in the last week (at most 50, newest first)."""
    since = timezone.now() - dt.timedelta(days=RESOLVED_DAYS)
    open_alerts = list(Alert.objects.filter(resolved_at__isnull=True).order_by("-opened_at"))
    resolved = list(Alert.objects.filter(resolved_at__gte=since).order_by("-resolved_at")[:RESOLVED_LIMIT])
    return {"open_alerts": open_alerts, "resolved_alerts": resolved, "alerts_open": len(open_alerts),
            "resolved_days": RESOLVED_DAYS}
