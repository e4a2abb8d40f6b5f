"""Console pages for providers: status tiles, health, capacity, failovers, and the manual failover buttons."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from backups.failover import provider_mark_down, provider_mark_up, provider_probe_now
from backups.snapshots import fleet_refreshed_at
from providers import charts, queries
from providers.models import Provider
from wedbackup.web import page, staff_required

# action in the URL -> (function in backups.failover, button label, what it does)
ACTIONS = {
    "mark-down": (provider_mark_down, "Mark down", "Stop sending work here and redirect queued work to others."),
    "mark-up": (provider_mark_up, "Mark up", "Let this provider take work again."),
    "probe": (provider_probe_now, "Probe now", "Run a health probe against this provider now."),
}
UP = (Provider.Status.ACTIVE, Provider.Status.DEGRADED)


def action_refusal(*, action: str, status: str) -> str:
    """Why ``action`` cannot apply to a provider in ``status`` ("" when it can)."""
    if action == "mark-up" and status in UP:
        return f"Already taking work ({status})."
    if action == "mark-down" and status not in UP:
        return f"Already out of service ({status})."
    return ""


@page("providers.view_provider")
def provider_list(request: HttpRequest) -> HttpResponse:
    return render(request, "providers/provider_list.html", {"providers": list(queries.providers_with_usage()),
                                                            "as_of": fleet_refreshed_at()})


@page("providers.view_provider")
def provider_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        context = queries.provider_detail(pk, request.GET.get("range", queries.DEFAULT_RANGE))
    except Provider.DoesNotExist:
        raise Http404("No such provider") from None
    since, until = context["window"]
    context["charts"] = [{"id": "chart-health",
                          "figure": charts.timeline_figure(context["timeline"], since=since, until=until)}]
    context["enough_data"] = len(context["timeline"]) >= charts.MIN_POINTS
    status = context["provider"].status
    context["actions"] = [{"slug": slug, "label": label, "refusal": action_refusal(action=slug, status=status)}
                          for slug, (_, label, _) in ACTIONS.items()]
    context["can_failover"] = request.user.has_perm("providers.can_failover")
    return render(request, "providers/provider_detail.html", context)


@staff_required  # the named permission is checked inside, after the action is known to exist
def provider_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """GET: a confirmation page. POST (CSRF-checked): run the failover function."""
    if action not in ACTIONS:
        raise Http404("No such action")
    if not request.user.has_perm("providers.can_failover"):
        raise PermissionDenied("You need the 'can failover' permission.")
    try:
        provider = Provider.objects.get(pk=pk)
    except Provider.DoesNotExist:
        raise Http404("No such provider") from None
    func, label, explanation = ACTIONS[action]
    if refusal := action_refusal(action=action, status=provider.status):
        messages.error(request, f"{label}: {refusal}")
        return redirect("providers:detail", pk=provider.pk)
    if request.method != "POST":
        return render(request, "providers/confirm.html",
                      {"provider": provider, "action": action, "label": label, "explanation": explanation})
    extra = {"reason": request.POST.get("reason", "").strip()[:500]} if action == "mark-down" else {}
    func(provider=provider, by=request.user, **extra)
    provider.refresh_from_db(fields=["status"])
    messages.success(request, f"{label}: {provider.name} is now {provider.status}.")
    return redirect("providers:detail", pk=provider.pk)
