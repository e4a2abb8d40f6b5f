"""Recovery point, measured: when a file's bytes were first seen complete (``Asset.seen_complete_at``, set by
ingest) and when they first met the policy (``Asset.protected_at``, set by ``planning.assets_protected_mark``
as uploads verify). The gap is
how much a studio could lose if its disk died that moment."""

from __future__ import annotations

import datetime as dt
import statistics

from django.db.models import Max, Min, Q
from django.utils import timezone

from .models import Asset, Wedding

WINDOW = dt.timedelta(days=30)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    # Rounded to the millisecond: interpolating between nearly equal values must not put p50 above p95.
    value = round(statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))], 3)
    return min(max(value, min(values)), max(values))


def weddings_rpo(wedding_ids: list[int]) -> dict[int, dict]:
    """wedding id -> last protected, oldest unprotected and the p95 RPO (two grouped queries and one read of
    the last 30 days' protected files)."""
    current = Asset.objects.filter(wedding_id__in=wedding_ids, missing_since__isnull=True)
    marks = current.values("wedding_id").annotate(
        last=Max("protected_at"), oldest=Min("seen_complete_at", filter=Q(protected_at__isnull=True))).order_by()
    out = {m["wedding_id"]: {"last_protected_at": m["last"], "oldest_unprotected_at": m["oldest"],
                             "rpo_p95_seconds": None} for m in marks}
    spans: dict[int, list[float]] = {}
    recent = current.filter(protected_at__gte=timezone.now() - WINDOW, seen_complete_at__isnull=False)
    for wid, seen, done in recent.values_list("wedding_id", "seen_complete_at", "protected_at"):
        spans.setdefault(wid, []).append(round(max(0.0, (done - seen).total_seconds()), 3))
    for wid, values in spans.items():
        out[wid]["rpo_p95_seconds"] = percentile(sorted(values), 95)
    return out


def wedding_rpo(*, wedding: Wedding, sample: int = 5000) -> dict:
    """The wedding page's figures: last protected, oldest unprotected file (and its age), and the RPO
    distribution (p50, p95, max, how many) over the last 30 days' newest ``sample`` files. Two queries."""
    current = wedding.assets.filter(missing_since__isnull=True)
    oldest = current.filter(protected_at__isnull=True).order_by("seen_complete_at", "pk").first()
    now = timezone.now()
    rows = list(current.filter(protected_at__isnull=False).order_by("-protected_at")
                .values_list("seen_complete_at", "protected_at")[:sample])
    values = sorted(round(max(0.0, (done - seen).total_seconds()), 3) for seen, done in rows
                    if seen is not None and done >= now - WINDOW)
    return {
        "last_protected_at": rows[0][1] if rows else None,
        "oldest_unprotected": oldest,
        "oldest_unprotected_age": (now - oldest.seen_complete_at).total_seconds()
        if oldest and oldest.seen_complete_at else None,
        "p50": percentile(values, 50), "p95": percentile(values, 95), "max": values[-1] if values else None,
        "count": len(values),
    }
