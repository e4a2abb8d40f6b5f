"""Alerts: one open alert per key, sent when it opens, repeated at most every WEDBACKUP_ALERT_REPEAT_MINUTES while
it stays open, and sent once more when it resolves. Sent by e-mail (Django's mail settings) to
WEDBACKUP_ALERT_EMAILS and as JSON to WEDBACKUP_ALERT_WEBHOOK_URL (Slack-compatible: a ``text`` field).

Callers say what is true now: ``alert_raise`` while a condition holds, ``alert_resolve`` (or
``alerts_resolve_absent`` for a sweep) once it no longer does. A failed send never raises: the alert stays
unsent and the next raise retries it; ``alerts_retry`` (run by every alert check) retries opening messages of alerts
no one raises again and resolution messages, each until it is delivered once.

Inside ``alerts_batched()`` (the alert check runs in one) messages are collected and sent at the end: one by one, or,
when there are more than WEDBACKUP_ALERT_DIGEST_OVER (a big outage), as one digest listing them all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import Alert

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 10
RETRY_WINDOW = dt.timedelta(days=7)  # undelivered messages older than this are given up (logged when they failed)
DIGEST_LINES = 200


@dataclass
class _Pending:
    """A message claimed for sending: ``previous`` is the alert's ``last_sent_at`` before the claim."""

    alert: Alert
    event: str  # "opened", "still open" or "resolved"
    previous: dt.datetime | None = None


_batch: ContextVar[list[_Pending] | None] = ContextVar("wedbackup_alert_batch", default=None)


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
    # A last send "in the future" means the clock went back: due now, not when the clock catches up.
    due = alert.last_sent_at is None or not dt.timedelta(0) <= now - alert.last_sent_at < repeat_interval()
    previous = alert.last_sent_at
    # Only one process sends a given repeat: last_sent_at moves forward atomically, and back if the send failed.
    if due and Alert.objects.filter(pk=alert.pk, last_sent_at=previous).update(last_sent_at=now):
        alert.last_sent_at = now
        _deliver(_Pending(alert, "opened" if alert.sent_count == 0 else "still open", previous))
    return alert


def alert_resolve(*, key: str) -> Alert | None:
    """The condition behind ``key`` no longer holds: resolve its open alert and say so (once)."""
    alert = Alert.objects.filter(key=key, resolved_at__isnull=True).first()
    if alert is None:
        return None
    if not Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(resolved_at=timezone.now()):
        return None  # resolved by another process meanwhile
    alert.refresh_from_db()
    # Claimed (resolution_sent) before it is sent, so the retry sweep never sends it a second time meanwhile.
    if alert.sent_count and Alert.objects.filter(pk=alert.pk, resolution_sent=False).update(resolution_sent=True):
        _deliver(_Pending(alert, "resolved"))
    return alert


def alerts_retry(*, now: dt.datetime | None = None) -> int:
    """Send again what was never delivered (within the last week): the opening message of an open alert nobody
    raises again (scrub, drill), and the resolution message of an alert that was told as open. Returns how many
    were sent (or batched)."""
    now = now or timezone.now()
    count = 0
    for alert in Alert.objects.filter(resolved_at__isnull=True, sent_count=0, last_sent_at__isnull=True,
                                      opened_at__gte=now - RETRY_WINDOW):
        if Alert.objects.filter(pk=alert.pk, sent_count=0, last_sent_at__isnull=True).update(last_sent_at=now):
            alert.last_sent_at = now
            _deliver(_Pending(alert, "opened", None))
            count += 1
    for alert in Alert.objects.filter(resolved_at__gte=now - RETRY_WINDOW, sent_count__gt=0, resolution_sent=False):
        if Alert.objects.filter(pk=alert.pk, resolution_sent=False).update(resolution_sent=True):
            _deliver(_Pending(alert, "resolved"))
            count += 1
    return count


@contextlib.contextmanager
def alerts_batched() -> Iterator[None]:
    """Collect the messages of the block and send them at its end: each alone, or one digest when there are more
    than WEDBACKUP_ALERT_DIGEST_OVER. Nested blocks join the outer one."""
    if _batch.get() is not None:
        yield
        return
    token = _batch.set([])
    try:
        yield
    finally:
        pending = _batch.get() or []
        _batch.reset(token)
        if len(pending) > digest_over():
            delivered = _send_digest(pending)
            for item in pending:
                _settle(item, delivered)
        else:
            for item in pending:
                _settle(item, _send(item.alert, item.event))


def digest_over() -> int:
    return int(getattr(settings, "WEDBACKUP_ALERT_DIGEST_OVER", 5))


def _deliver(item: _Pending) -> None:
    batch = _batch.get()
    if batch is not None:
        batch.append(item)
    else:
        _settle(item, _send(item.alert, item.event))


def _settle(item: _Pending, delivered: bool) -> None:
    """Record a send: counted when delivered; otherwise the claim is undone so the message is tried again."""
    alert = item.alert
    if item.event == "resolved":
        if not delivered:
            Alert.objects.filter(pk=alert.pk).update(resolution_sent=False)
        alert.resolution_sent = delivered
    elif delivered:
        alert.sent_count += 1
        Alert.objects.filter(pk=alert.pk).update(sent_count=F("sent_count") + 1)
    else:
        Alert.objects.filter(pk=alert.pk, last_sent_at=alert.last_sent_at).update(last_sent_at=item.previous)
        alert.last_sent_at = item.previous


def alerts_resolve_absent(*, kind: str, keys: set[str]) -> list[Alert]:
    """A sweep found exactly ``keys`` true for ``kind``: resolve that kind's open alerts not among them."""
    stale = Alert.objects.filter(kind=kind, resolved_at__isnull=True).exclude(key__in=keys)
    return [a for a in (alert_resolve(key=k) for k in list(stale.values_list("key", flat=True))) if a]


def alert_text(alert: Alert, event: str) -> str:
    head = {"opened": "ALERT", "still open": "STILL OPEN", "resolved": "RESOLVED"}[event]
    since = f"open since {alert.opened_at:%Y-%m-%d %H:%M %Z}"
    return f"[WedBackup] {head}: {alert.subject} ({since})" + (f"\n{alert.detail}" if alert.detail else "")


def _payload(alert: Alert, event: str) -> dict:
    return {"event": event, "kind": alert.kind, "key": alert.key, "subject": alert.subject, "detail": alert.detail,
            "opened_at": alert.opened_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None}


def _send(alert: Alert, event: str) -> bool:
    """Send one alert's message to every configured channel."""
    text = alert_text(alert, event)
    return _post(text=text, payload={"text": text, **_payload(alert, event)}, what=f"{event} {alert.key}")


def digest_text(items: list[_Pending]) -> str:
    counts = {event: sum(1 for i in items if i.event == event) for event in ("opened", "still open", "resolved")}
    summary = ", ".join(f"{n} {event}" for event, n in counts.items() if n)
    lines = [f"[WedBackup] DIGEST: {len(items)} alerts ({summary})"]
    lines += [alert_text(i.alert, i.event).splitlines()[0].removeprefix("[WedBackup] ") for i in items[:DIGEST_LINES]]
    if len(items) > DIGEST_LINES:
        lines.append(f"... and {len(items) - DIGEST_LINES} more: see the Alerts page")
    return "\n".join(lines)


def _send_digest(items: list[_Pending]) -> bool:
    """One message listing many alerts (a big outage), on every configured channel."""
    text = digest_text(items)
    payload = {"text": text, "event": "digest",
               "alerts": [_payload(i.alert, i.event) for i in items[:DIGEST_LINES]], "count": len(items)}
    return _post(text=text, payload=payload, what=f"digest of {len(items)}")


def _post(*, text: str, payload: dict, what: str) -> bool:
    """Send by e-mail and webhook; True when at least one channel got it (or none is configured)."""
    recipients = list(getattr(settings, "WEDBACKUP_ALERT_EMAILS", []))
    webhook = getattr(settings, "WEDBACKUP_ALERT_WEBHOOK_URL", "")
    delivered, tried = False, False
    if recipients:
        tried = True
        try:
            send_mail(text.splitlines()[0], text, settings.DEFAULT_FROM_EMAIL, recipients)
            delivered = True
        except Exception:
            log.exception("alert e-mail (%s) failed", what)
    if webhook:
        tried = True
        try:
            requests.post(webhook, json=payload, timeout=WEBHOOK_TIMEOUT).raise_for_status()
            delivered = True
        except requests.RequestException as exc:
            log.warning("alert webhook (%s) failed: %s", what, type(exc).__name__)
    if not tried:
        log.warning("alert %s: %s (no WEDBACKUP_ALERT_EMAILS or WEDBACKUP_ALERT_WEBHOOK_URL set)", what,
                    text.splitlines()[0])
    return delivered or not tried
