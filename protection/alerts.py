"""Alerts: one open alert per key, sent when it opens, repeated at most every WEDBACKUP_ALERT_REPEAT_MINUTES while
it stays open, and sent once more when it resolves. Sent by e-mail (Django's mail settings) to
WEDBACKUP_ALERT_EMAILS and as JSON to WEDBACKUP_ALERT_WEBHOOK_URL (Slack-compatible: a ``text`` field).

Callers say what is true now: ``alert_raise`` while a condition holds, ``alert_resolve`` (or
``alerts_resolve_absent`` for a sweep) once it no longer does. A failed send never raises: the alert stays
unsent and the next raise retries it.
"""

from __future__ import annotations

import datetime as dt
import logging

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Alert

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 10


def repeat_interval() -> dt.timedelta:
    return dt.timedelta(minutes=int(getattr(settings, "WEDBACKUP_ALERT_REPEAT_MINUTES", 240)))


def alert_raise(*, key: str, kind: str, subject: str, detail: str = "") -> Alert:
    """The condition behind ``key`` holds now: open its alert (and send it), or keep it open (and repeat it when
    the repeat interval has passed since the last send)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            alert = Alert.objects.select_for_update().filter(key=key, resolved_at__isnull=True).first()
            if alert is None:
                alert = Alert.objects.create(key=key, kind=kind, subject=subject[:255], detail=detail,
                                             opened_at=now, last_seen_at=now)
            else:
                Alert.objects.filter(pk=alert.pk).update(subject=subject[:255], detail=detail, last_seen_at=now)
                alert.subject, alert.detail, alert.last_seen_at = subject[:255], detail, now
    except IntegrityError:  # another process opened it between our read and our insert
        return alert_raise(key=key, kind=kind, subject=subject, detail=detail)
    due = alert.last_sent_at is None or now - alert.last_sent_at >= repeat_interval()
    previous = alert.last_sent_at
    # Only one process sends a given repeat: last_sent_at moves forward atomically, and back if the send failed.
    if due and Alert.objects.filter(pk=alert.pk, last_sent_at=previous).update(last_sent_at=now):
        if _send(alert, "opened" if alert.sent_count == 0 else "still open"):
            alert.sent_count += 1
            alert.last_sent_at = now
            Alert.objects.filter(pk=alert.pk).update(sent_count=alert.sent_count)
        else:
            Alert.objects.filter(pk=alert.pk).update(last_sent_at=previous)
    return alert


def alert_resolve(*, key: str) -> Alert | None:
    """The condition behind ``key`` no longer holds: resolve its open alert and say so (once)."""
    alert = Alert.objects.filter(key=key, resolved_at__isnull=True).first()
    if alert is None:
        return None
    if not Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(resolved_at=timezone.now()):
        return None  # resolved by another process meanwhile
    alert.refresh_from_db()
    if alert.sent_count and _send(alert, "resolved"):
        Alert.objects.filter(pk=alert.pk).update(resolution_sent=True)
    return alert


def alerts_resolve_absent(*, kind: str, keys: set[str]) -> list[Alert]:
    """A sweep found exactly ``keys`` true for ``kind``: resolve that kind's open alerts not among them."""
    stale = Alert.objects.filter(kind=kind, resolved_at__isnull=True).exclude(key__in=keys)
    return [a for a in (alert_resolve(key=k) for k in list(stale.values_list("key", flat=True))) if a]


def alert_text(alert: Alert, event: str) -> str:
    head = {"opened": "ALERT", "still open": "STILL OPEN", "resolved": "RESOLVED"}[event]
    since = f"open since {alert.opened_at:%Y-%m-%d %H:%M %Z}"
    return f"[WedBackup] {head}: {alert.subject} ({since})" + (f"\n{alert.detail}" if alert.detail else "")


def _send(alert: Alert, event: str) -> bool:
    """Send to every configured channel; True when at least one got it (or none is configured)."""
    text = alert_text(alert, event)
    recipients = list(getattr(settings, "WEDBACKUP_ALERT_EMAILS", []))
    webhook = getattr(settings, "WEDBACKUP_ALERT_WEBHOOK_URL", "")
    delivered, tried = False, False
    if recipients:
        tried = True
        try:
            send_mail(text.splitlines()[0], text, settings.DEFAULT_FROM_EMAIL, recipients)
            delivered = True
        except Exception:
            log.exception("alert e-mail for %s failed", alert.key)
    if webhook:
        tried = True
        payload = {"text": text, "event": event, "kind": alert.kind, "key": alert.key, "subject": alert.subject,
                   "detail": alert.detail, "opened_at": alert.opened_at.isoformat(),
                   "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None}
        try:
            requests.post(webhook, json=payload, timeout=WEBHOOK_TIMEOUT).raise_for_status()
            delivered = True
        except requests.RequestException as exc:
            log.warning("alert webhook for %s failed: %s", alert.key, type(exc).__name__)
    if not tried:
        log.warning("alert %s: %s (no WEDBACKUP_ALERT_EMAILS or WEDBACKUP_ALERT_WEBHOOK_URL set)", event, alert.subject)
    return delivered or not tried
