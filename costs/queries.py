"""The console's read side for costs: the cost model's summary (when loaded), proposals, past applies."""

from __future__ import annotations

import importlib
import importlib.util
from decimal import Decimal

from django.core.paginator import Page, Paginator
from django.db.models import Count, DecimalField, ExpressionWrapper, F, QuerySet, Sum

from .models import Optimization

PROPOSALS_PER_PAGE = 50
DONE = [Optimization.Status.APPLYING, Optimization.Status.APPLIED, Optimization.Status.PARTIAL,
        Optimization.Status.FAILED]
SAVING = ExpressionWrapper(F("current_monthly") - F("new_monthly"), output_field=DecimalField(max_digits=14,
                                                                                               decimal_places=4))


def cost_summary() -> dict | None:
    """costs.model.costs_summary() normalised to {current_monthly, optimised_monthly, currency}; None until the
    cost model exists. Accepts a dict or an object with those attributes."""
    if importlib.util.find_spec("costs.model") is None:
        return None
    result = importlib.import_module("costs.model").costs_summary()
    if result is None:
        return None

    def get(key: str, default=None):
        return result.get(key, default) if isinstance(result, dict) else getattr(result, key, default)

    current, optimised = get("current_monthly"), get("optimised_monthly")
    return {
        "current_monthly": current, "optimised_monthly": optimised, "currency": get("currency") or "USD",
        "saving": (Decimal(current) - Decimal(optimised)) if current is not None and optimised is not None else None,
        "reduction_percent": get("reduction_percent"),
        "savings_by_kind": get("savings_by_kind") or {},
        "by_provider_class": get("by_provider_class") or [],
        "catalog_version": get("catalog_version") or "",
    }


def proposals() -> QuerySet[Optimization]:
    return (Optimization.objects.filter(status=Optimization.Status.PROPOSED).select_related("wedding")
            .annotate(saving=SAVING).order_by("-saving", "-created"))


def proposals_page(page: str | int = 1) -> Page:
    return Paginator(proposals(), PROPOSALS_PER_PAGE).get_page(page)


def savings_by_kind() -> list[dict]:
    """Open proposals summed per kind of change (one aggregate query)."""
    return list(
        Optimization.objects.filter(status=Optimization.Status.PROPOSED).values("kind")
        .annotate(proposals=Count("id"), current=Sum("current_monthly"), new=Sum("new_monthly"),
                  saving=Sum(SAVING), one_off=Sum("one_off_cost"))
        .order_by("-saving")
    )


def past_applies(limit: int = 20) -> list[Optimization]:
    return list(Optimization.objects.filter(status__in=DONE).select_related("wedding", "applied_by", "job")
                .annotate(saving=SAVING).order_by(F("applied_at").desc(nulls_last=True), "-created")[:limit])


def costs_page(page: str | int = 1) -> dict:
    return {"summary": cost_summary(), "proposals": proposals_page(page), "by_kind": savings_by_kind(),
            "history": past_applies()}
