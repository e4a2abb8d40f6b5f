"""The dispatcher under faults: an enqueue that fails (Redis unreachable) loses no run and a run is never enqueued
twice; a wall clock that went back leaves no schedule stranded far in the future."""

import datetime as dt
import socket

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker

from protection.models import Schedule, ScrubRun
from protection.schedules import schedules_claim
from protection.tasks import schedules_dispatch
from tests.factories import make_provider

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens on it once closed


@pytest.fixture
def due(rq_queues):
    Schedule.objects.all().delete()
    past = timezone.now() - dt.timedelta(seconds=1)
    return {task: Schedule.objects.create(task=task, interval_minutes=60, next_run_at=past)
            for task in (Schedule.Task.SCRUB, Schedule.Task.DRILL, Schedule.Task.ALERT_CHECK)}


def _counts() -> tuple[int, int]:
    return django_rq.get_queue("bulk").count, django_rq.get_queue("default").count


def test_an_enqueue_that_fails_keeps_the_schedule_due_and_the_next_tick_starts_it_once(due, settings):
    working = settings.RQ_QUEUES
    before = {s.pk: s.next_run_at for s in Schedule.objects.all()}
    settings.RQ_QUEUES = {name: {**cfg, "URL": f"redis://127.0.0.1:{_closed_port()}/6"}
                          for name, cfg in working.items()}
    assert schedules_dispatch() == []  # Redis unreachable: nothing started ...
    for schedule in Schedule.objects.all():  # ... and nothing claimed: the runs are not lost
        assert schedule.next_run_at == before[schedule.pk] and schedule.last_run_at is None
    settings.RQ_QUEUES = working  # Redis is back
    assert len(schedules_dispatch()) == 3
    assert _counts() == (2, 1)
    assert schedules_dispatch() == [] and _counts() == (2, 1)
    assert all(s.next_run_at > timezone.now() + dt.timedelta(minutes=59) for s in Schedule.objects.all())


def test_a_claim_lost_after_its_enqueue_does_not_enqueue_the_run_again(due, tmp_path):
    make_provider(name="nas", kind="watched_folder", bucket=str(tmp_path / "nas"), options={"create": True})
    before = {s.pk: s.next_run_at for s in Schedule.objects.all()}
    assert len(schedules_dispatch()) == 3 and _counts() == (2, 1)
    for pk, next_run_at in before.items():  # as if the claim's commit failed after the enqueue
        Schedule.objects.filter(pk=pk).update(next_run_at=next_run_at, last_run_at=None)
    assert len(schedules_dispatch()) == 3  # claimed again, for the same occurrence ...
    assert _counts() == (2, 1)  # ... whose jobs are already queued: not enqueued twice
    django_rq.get_worker("default", "bulk", worker_class=SimpleWorker).work(burst=True, with_scheduler=False)
    assert ScrubRun.objects.count() == 1
    assert all("seconds" in s.last_result for s in Schedule.objects.all())


def test_a_schedule_far_ahead_after_the_clock_went_back_is_brought_back_to_one_interval(rq_queues):
    Schedule.objects.all().delete()
    now = timezone.now()
    stranded = Schedule.objects.create(task="scrub", interval_minutes=60, next_run_at=now + dt.timedelta(days=30),
                                       last_run_at=now + dt.timedelta(days=30) - dt.timedelta(minutes=60))
    soon = Schedule.objects.create(task="drill", interval_minutes=60, next_run_at=now + dt.timedelta(minutes=20))
    assert schedules_claim(now=now) == []
    stranded.refresh_from_db()
    soon.refresh_from_db()
    assert stranded.next_run_at == now + dt.timedelta(minutes=60)
    assert soon.next_run_at == now + dt.timedelta(minutes=20)  # within one interval: left alone
    assert {s.pk for s in schedules_claim(now=now + dt.timedelta(minutes=61))} == {stranded.pk, soon.pk}


def test_a_clock_that_jumped_forward_runs_each_schedule_once_not_once_per_missed_interval(rq_queues):
    Schedule.objects.all().delete()
    now = timezone.now()
    Schedule.objects.create(task="scrub", interval_minutes=5, next_run_at=now)
    later = now + dt.timedelta(days=3)
    assert len(schedules_claim(now=later)) == 1
    assert schedules_claim(now=later) == []
    assert Schedule.objects.get().next_run_at == later + dt.timedelta(minutes=5)
