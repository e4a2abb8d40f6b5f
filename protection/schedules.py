"""Schedules are data (``Schedule`` rows, edited in the admin and the console); one dispatcher on rq's cron
(``protection.tasks.schedules_dispatch``) claims the due ones here and enqueues their runs. Claiming moves
``next_run_at`` forward under a row lock (skip locked), so two dispatchers never start one schedule twice, and
a dispatcher that was down for a day starts each missed schedule once, not once per missed interval."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from backups.audit import audit_record

from .models import Schedule


def schedule_next(*, schedule: Schedule, now: dt.datetime) -> dt.datetime:
    """The next run after one that starts ``now``: one interval on, never in the past."""
    return now + dt.timedelta(minutes=schedule.interval_minutes)


def schedules_claim(*, now: dt.datetime | None = None) -> list[Schedule]:
    """The enabled schedules due at ``now``, each claimed for this run (``last_run_at`` = now, ``next_run_at``
    one interval on). Call from the dispatcher only; returns the claimed rows."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(Schedule.objects.select_for_update(skip_locked=True)
                   .filter(enabled=True, next_run_at__lte=now).order_by("next_run_at", "pk"))
        for schedule in due:
            schedule.last_run_at, schedule.next_run_at = now, schedule_next(schedule=schedule, now=now)
            schedule.save(update_fields=["last_run_at", "next_run_at"])
    return due


def schedule_update(*, schedule: Schedule, interval_minutes: int, enabled: bool, by=None) -> Schedule:
    """Change how often a schedule runs; the next run moves to one new interval after the last (or now)."""
    if interval_minutes < 1:
        raise ValueError("the interval must be at least one minute")
    before = {"interval_minutes": schedule.interval_minutes, "enabled": schedule.enabled}
    schedule.interval_minutes, schedule.enabled = interval_minutes, enabled
    base = schedule.last_run_at or timezone.now()
    schedule.next_run_at = base + dt.timedelta(minutes=interval_minutes)
    schedule.save(update_fields=["interval_minutes", "enabled", "next_run_at"])
    audit_record(by=by, action="schedule.update", target=str(schedule),
                 details={"before": before, "after": {"interval_minutes": interval_minutes, "enabled": enabled}})
    return schedule


def schedule_run_now(*, schedule: Schedule, by=None) -> Schedule:
    """Make the schedule due now: the dispatcher starts it on its next tick (within a minute)."""
    schedule.next_run_at = timezone.now()
    schedule.save(update_fields=["next_run_at"])
    audit_record(by=by, action="schedule.run_now", target=str(schedule))
    return schedule


def schedules_list() -> list[Schedule]:
    return list(Schedule.objects.order_by("task", "plan"))
