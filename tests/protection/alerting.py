"""Helpers for the alert tests: what was sent for a key, and an alert's last send moved back past the interval."""

from __future__ import annotations

import datetime as dt

from django.core import mail
from django.utils import timezone

from protection.models import Alert


def sent(got: list[dict], key: str) -> list[str]:
    """The webhook events received for ``key``, in order."""
    return [g["event"] for g in got if g["key"] == key]


def mails_about(subject_part: str) -> list:
    return [m for m in mail.outbox if m.subject.startswith("[WedBackup]") and subject_part in m.subject]


def open_alert(key: str) -> Alert | None:
    return Alert.objects.filter(key=key, resolved_at__isnull=True).first()


def repeat_due(key: str, minutes: int = 61) -> None:
    """As if the open alert was last sent ``minutes`` ago (the tests' repeat interval is 60)."""
    Alert.objects.filter(key=key, resolved_at__isnull=True).update(
        last_sent_at=timezone.now() - dt.timedelta(minutes=minutes))
