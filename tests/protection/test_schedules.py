"""Schedules are data: the dispatcher claims what is due once, skips missed intervals, and staff edit them."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from backups.models import AuditEvent
from protection.models import Schedule
from protection.schedules import schedule_run_now, schedule_update, schedules_claim

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedules():
    Schedule.objects.all().delete()
    now = timezone.now()
    return {
        "due": Schedule.objects.create(task="scrub", interval_minutes=60, next_run_at=now - dt.timedelta(minutes=1)),
        "later": Schedule.objects.create(task="drill", interval_minutes=60, next_run_at=now + dt.timedelta(minutes=5)),
        "off": Schedule.objects.create(task="alert_check", interval_minutes=5, enabled=False,
                                       next_run_at=now - dt.timedelta(hours=1)),
        "missed": Schedule.objects.create(task="source_scan", plan="premium", interval_minutes=60,
                                          next_run_at=now - dt.timedelta(days=1)),
    }


def test_only_enabled_due_schedules_are_claimed_once_and_missed_runs_collapse(schedules):
    now = timezone.now()
    claimed = schedules_claim(now=now)
    assert {s.task for s in claimed} == {"scrub", "source_scan"}
    missed = Schedule.objects.get(pk=schedules["missed"].pk)
    assert missed.last_run_at == now and missed.next_run_at == now + dt.timedelta(minutes=60)  # not 24 runs
    assert schedules_claim(now=now) == []  # claimed: not due again until one interval on
    assert {s.task for s in schedules_claim(now=now + dt.timedelta(minutes=61))} == {"drill", "scrub", "source_scan"}


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_never_claim_one_schedule_twice(schedules):
    results: list[list[Schedule]] = []
    barrier = threading.Barrier(4)

    def dispatch():
        barrier.wait()
        try:
            results.append(schedules_claim())
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [s.pk for run in results for s in run]
    assert sorted(claimed) == sorted([schedules["due"].pk, schedules["missed"].pk])


def test_changing_an_interval_moves_the_next_run_and_is_audited(schedules, staff_user):
    s = schedules["later"]
    s.last_run_at = timezone.now() - dt.timedelta(minutes=10)
    s.save()
    schedule_update(schedule=s, interval_minutes=30, enabled=True, by=staff_user)
    s.refresh_from_db()
    assert s.next_run_at == s.last_run_at + dt.timedelta(minutes=30)
    event = AuditEvent.objects.get(action="schedule.update")
    assert event.details["before"]["interval_minutes"] == 60 and event.actor == staff_user
    with pytest.raises(ValueError):
        schedule_update(schedule=s, interval_minutes=0, enabled=True)


def test_run_now_makes_it_due_for_the_next_tick(schedules):
    schedule_run_now(schedule=schedules["later"], by="cli:test")
    assert {s.task for s in schedules_claim()} == {"scrub", "source_scan", "drill"}


def test_the_page_shows_next_runs_and_admins_edit_them(schedules, staff_client):
    page = staff_client.get("/protection/schedules/").content.decode()
    assert 'data-schedule="source_scan-premium"' in page and "Run now" in page
    response = staff_client.post(f"/protection/schedules/{schedules['later'].pk}/",
                                 {"interval_minutes": "15", "enabled": "on"})
    assert response.status_code == 302
    assert Schedule.objects.get(pk=schedules["later"].pk).interval_minutes == 15
    staff_client.post(f"/protection/schedules/{schedules['later'].pk}/", {"interval_minutes": "soon"})
    assert Schedule.objects.get(pk=schedules["later"].pk).interval_minutes == 15
    staff_client.post(f"/protection/schedules/{schedules['off'].pk}/run/")
    assert Schedule.objects.get(pk=schedules["off"].pk).next_run_at <= timezone.now()


def test_an_admin_edit_goes_through_the_same_function(schedules, staff_client):
    s = schedules["later"]
    response = staff_client.post(f"/admin/protection/schedule/{s.pk}/change/",
                                 {"interval_minutes": "20", "enabled": "on"})
    assert response.status_code == 302, response.content.decode()[:1000]
    s.refresh_from_db()
    assert s.interval_minutes == 20
    assert AuditEvent.objects.filter(action="schedule.update", target=str(s)).exists()
