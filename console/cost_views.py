"""Console page for costs: now vs optimised, savings by kind, proposals with apply buttons, past applies."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from costs import charts, queries
from costs.models import Optimization
from costs.tasks import optimization_apply as apply
from costs.tasks import optimizations_apply_all as apply_all
from wedbackup.web import action, page


@page("costs.view_optimization")
def costs(request: HttpRequest) -> HttpResponse:
    context = queries.costs_page(request.GET.get("page", 1))
    context["charts"] = []
    summary = context["summary"]
    if summary:
        context["charts"].append({"id": "chart-costs", "figure": charts.now_vs_optimised_figure(summary)})
        if summary["by_provider_class"]:
            context["charts"].append({"id": "chart-by-class", "figure": charts.by_provider_class_figure(
                summary["by_provider_class"], summary["currency"])})
    if len(context["cost_history"]) >= 2:
        context["charts"].append({"id": "chart-history", "figure": charts.cost_history_figure(context["cost_history"])})
    if context["by_kind"]:
        context["charts"].append({"id": "chart-savings", "figure": charts.savings_by_kind_figure(context["by_kind"])})
    return render(request, "costs/costs.html", context)


@action("costs.apply_optimization")
def optimization_apply(request: HttpRequest, pk: int) -> HttpResponse:
    optimization = get_object_or_404(Optimization, pk=pk)
    job = apply(optimization=optimization, by=request.user)
    if job is None:
        optimization.refresh_from_db()
        messages.warning(request, f"Proposal #{optimization.pk} was not applied: "
                                  f"{optimization.error or 'it is ' + optimization.status}.")
    else:
        messages.success(request, f"Applying proposal #{optimization.pk} in job #{job.pk}.")
    return redirect("costs:index")


@action("costs.apply_optimization")
def optimizations_apply_all(request: HttpRequest) -> HttpResponse:
    jobs = apply_all(by=request.user)
    messages.success(request, f"{len(jobs)} apply job{'s' if len(jobs) != 1 else ''} queued.")
    return redirect("costs:index")
