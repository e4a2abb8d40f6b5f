"""Liveness and readiness for load balancers and orchestrators: no login, JSON, cheap, no secrets.

``/healthz``: the process answers. ``/readyz``: the database answers, Redis answers, and at least one RQ worker
sent a heartbeat within ``WEDBACKUP_READY_WORKER_SECONDS`` (a console whose jobs nobody runs is not ready).
"""

from __future__ import annotations

import datetime as dt

import django_rq
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from rq import Worker


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure is "not ready", named by type only (no DSN, no host)
        return f"unavailable ({type(exc).__name__})"
    return "ok"


def _connection():
    return django_rq.get_connection("default")


def _redis_and_workers() -> tuple[str, str]:
    try:
        conn = _connection()
        conn.ping()
        workers = Worker.all(connection=conn)
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})", "unknown"
    window = dt.timedelta(seconds=int(getattr(settings, "WEDBACKUP_READY_WORKER_SECONDS", 120)))
    now = dt.datetime.now(dt.UTC)
    alive = [w for w in workers if w.last_heartbeat and now - w.last_heartbeat.replace(tzinfo=dt.UTC) <= window]
    return "ok", "ok" if alive else f"none seen in {window.seconds} s"


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    redis, workers = _redis_and_workers()
    checks = {"database": _database(), "redis": redis, "workers": workers}
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
