"""The Prometheus scrape endpoint: a bearer token, or a client address on the allow-list; nothing else."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .metrics import FleetCollector


def scrape_allowed(request: HttpRequest) -> bool:
    token = settings.WEDBACKUP_METRICS_TOKEN
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token and offered and hmac.compare_digest(offered.encode(), token.encode()):
        return True
    return request.META.get("REMOTE_ADDR", "") in settings.WEDBACKUP_METRICS_ALLOW


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        raise PermissionDenied("Metrics need the bearer token or an allowed address.")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
