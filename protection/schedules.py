"""Schedules are data (``Schedule`` rows, edited in the admin and the console); one dispatcher on rq's cron
(``protection.tasks.schedules_dispatch``) claims the due ones here and enqueues their runs. Claiming moves
``next_run_at`` forward under a row lock (skip locked), so two dispatchers never start one schedule twice, and
a dispatcher that was down for a day starts each missed schedule once, not once per missed interval.

A claim and the enqueue of its run are one: each schedule is claimed in a savepoint and started (``start``) inside
it, so an enqueue that fails (Redis away) rolls its claim back and the next tick tries again. The run's RQ job id is
derived from the claimed occurrence (``schedule_job_id``), so a claim lost after its enqueue succeeded (the commit
failed) is not enqueued a second time. A wall clock that jumped back leaves no schedule stranded: a next run further
away than one interval is brought back to one interval from now."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from backups.audit import audit_record

from .models import Schedule

log = logging.getLogger(__name__)

def schedule_next(*, schedule: Schedule, now: dt.datetime) -> dt.datetime:
    """The next run after one that starts ``now``: one interval on, never in the past."""
    return now + dt.timedelta(minutes=schedule.interval_minutes)


def schedule_job_id(*, schedule: Schedule) -> str:
    """The RQ job id of the run due at the schedule's current ``next_run_at``: one id per occurrence."""
    return f"schedule-{schedule.pk}-{int(schedule.next_run_at.timestamp() * 1_000_000)}"


def schedules_clamp(*, now: dt.datetime) -> int:
    """Schedules whose next run is more than one interval away (the wall clock went back, or was wrong when they
    were claimed): brought back to one interval from now. Returns how many moved."""
    moved = 0
    for schedule in Schedule.objects.filter(enabled=True, next_run_at__gt=now + dt.timedelta(minutes=1)):
        latest = schedule_next(schedule=schedule, now=now)
        if schedule.next_run_at > latest:
            moved += Schedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
                next_run_at=latest)
    if moved:
        log.warning("schedules: %s next runs were more than one interval ahead (clock change?): moved back", moved)
    return moved


def schedules_claim(*, now: dt.datetime | None = None,
                    start: Callable[[Schedule, str], object] | None = None) -> list[Schedule]:
    """The enabled schedules due at ``now``, each claimed for this run (``last_run_at`` = now, ``next_run_at``
    one interval on) and started with ``start(schedule, job_id)`` inside its claim's savepoint: a start that raises
    leaves that schedule due (logged) and the others claimed. Call from the dispatcher only; returns the started."""
    now = now or timezone.now()
    schedules_clamp(now=now)
    started = []
    with transaction.atomic():
        due = list(Schedule.objects.select_for_update(skip_locked=True)
                   .filter(enabled=True, next_run_at__lte=now).order_by("next_run_at", "pk"))
        for schedule in due:
            job_id = schedule_job_id(schedule=schedule)
            try:
                with transaction.atomic():
                    schedule.last_run_at, schedule.next_run_at = now, schedule_next(schedule=schedule, now=now)
                    schedule.save(update_fields=["last_run_at", "next_run_at"])
                    if start is not None:
                        start(schedule, job_id)
            except Exception:
                log.exception("schedules: starting %s failed; it stays due and the next tick retries", schedule)
                schedule.refresh_from_db()
                continue
            started.append(schedule)
    return started


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
