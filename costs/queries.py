"""The console's read side for costs: the stored cost summary and its history, proposals, past applies."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import Count, DecimalField, ExpressionWrapper, F, QuerySet, Sum

from .apply import APPLIABLE
from .models import Optimization
from .snapshots import cost_history, cost_latest

PROPOSALS_PER_PAGE = 50
DONE = [Optimization.Status.APPLYING, Optimization.Status.APPLIED, Optimization.Status.PARTIAL,
        Optimization.Status.FAILED]
SAVING = ExpressionWrapper(F("current_monthly") - F("new_monthly"), output_field=DecimalField(max_digits=14,
                                                                                               decimal_places=4))


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
    return {"summary": cost_latest(), "proposals": proposals_page(page), "by_kind": savings_by_kind(),
            "history": past_applies(), "cost_history": cost_history(), "appliable_kinds": APPLIABLE,
            "appliable": proposals().filter(kind__in=APPLIABLE).count()}
