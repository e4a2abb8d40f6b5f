"""Immutable retention: copies on providers with Object Lock are written locked, and the lock is renewed while
the wedding's retention period runs (Kopia documents that it does not renew Object Lock dates, so protection
silently lapses; here a daily job extends every lock that would end within a third of its window).

A plan's ``retention_days`` counts from the wedding date. One lock reaches at most ``WEDBACKUP_LOCK_WINDOW_DAYS``
ahead (so a wrong retention setting cannot lock a copy for years in compliance mode), and is extended by the
renewal until the retention period ends; after that the lock simply runs out.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from providers.backends import backend_for
from providers.backends.base import ProviderError
from providers.models import Provider

from .models import BackupPolicy, Replica, Wedding

log = logging.getLogger(__name__)


def lock_window() -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, "WEDBACKUP_LOCK_WINDOW_DAYS", 30)))


def retention_end(wedding: Wedding, retention_days: int) -> dt.datetime | None:
    """When the wedding's retention period ends (None: no retention)."""
    if retention_days <= 0:
        return None
    start = dt.datetime.combine(wedding.date, dt.time.min, tzinfo=dt.UTC)
    return start + dt.timedelta(days=retention_days)


def lock_until(*, wedding: Wedding, retention_days: int, now: dt.datetime | None = None) -> dt.datetime | None:
    """How long a copy written (or renewed) now should stay locked; None when no lock is due."""
    now = now or timezone.now()
    end = retention_end(wedding, retention_days)
    if end is None or end <= now:
        return None
    return min(end, now + lock_window())


def locking_provider_ids() -> set[int]:
    """Providers whose bucket has Object Lock on (their ``object_lock_mode`` option)."""
    return {p.pk for p in Provider.objects.filter(enabled=True) if (p.options or {}).get("object_lock_mode")}


def retention_renew(*, now: dt.datetime | None = None) -> dict:
    """Extend every verified, locked copy whose lock ends within a third of the window while its wedding's
    retention still runs. Idempotent; a provider that fails is retried at the next run. Returns counts."""
    now = now or timezone.now()
    policy = BackupPolicy.default()
    due = (Replica.objects.filter(status=Replica.Status.VERIFIED, retain_until__isnull=False,
                                  retain_until__lt=now + lock_window() / 3)
           .exclude(version_id="").select_related("provider", "asset__wedding"))
    renewed = failed = 0
    for replica in due.iterator(chunk_size=500):
        wedding = replica.asset.wedding
        until = lock_until(wedding=wedding, retention_days=policy.for_plan(wedding.plan)["retention_days"], now=now)
        if until is None or until <= replica.retain_until:
            continue
        try:
            backend_for(replica.provider).retention_extend(replica.object_key, replica.version_id, until)
        except ProviderError as exc:
            failed += 1
            log.warning("could not renew the lock of %s on %s: %s", replica.object_key, replica.provider.name, exc)
            continue
        Replica.objects.filter(pk=replica.pk).update(retain_until=until, updated=timezone.now())
        renewed += 1
    return {"renewed": renewed, "failed": failed}
