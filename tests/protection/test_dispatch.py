"""The dispatcher on rq's cron runs what the schedules say, through real workers, and records each result."""

import datetime as dt

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker

from backups.ingest import wedding_import
from backups.models import Asset, BackupPolicy
from protection.models import Alert, Drill, Schedule, ScrubRun
from protection.tasks import schedules_dispatch
from tests.factories import make_provider

pytestmark = pytest.mark.django_db(transaction=True)


def work(*queues):
    django_rq.get_worker(*queues, worker_class=SimpleWorker).work(burst=True, with_scheduler=False)


@pytest.fixture
def due(rq_queues):
    Schedule.objects.all().delete()
    past = timezone.now() - dt.timedelta(seconds=1)
    return {task: Schedule.objects.create(task=task, interval_minutes=60, next_run_at=past)
            for task in (Schedule.Task.SCRUB, Schedule.Task.DRILL, Schedule.Task.ALERT_CHECK)}


def test_due_schedules_run_once_on_their_queues_and_record_their_results(due, tmp_path):
    make_provider(name="nas", kind="watched_folder", bucket=str(tmp_path / "nas"), options={"create": True})
    started = schedules_dispatch()
    assert len(started) == 3 and schedules_dispatch() == []  # claimed: not again until next interval
    assert django_rq.get_queue("bulk").count == 2 and django_rq.get_queue("default").count == 1
    assert django_rq.get_queue("health").count == 0  # never behind a hung source folder: probes only
    work("default", "bulk")
    assert ScrubRun.objects.count() == 1 and Drill.objects.count() == 1
    for schedule in Schedule.objects.all():
        assert "seconds" in schedule.last_result, schedule
        assert schedule.next_run_at > timezone.now() + dt.timedelta(minutes=59)
    assert "resolved" in Schedule.objects.get(task=Schedule.Task.ALERT_CHECK).last_result


def test_a_source_scan_schedule_takes_new_files_of_its_plan_only(rq_queues, tmp_path, settings):
    settings.WEDBACKUP_WATCH_QUIET_SECONDS = 0  # the files below settled long before the scan
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers = 1, 1
    policy.save()
    make_provider(name="nas", kind="watched_folder", bucket=str(tmp_path / "nas"), options={"create": True})
    folders = {}
    for plan in ("premium", "standard"):
        folders[plan] = tmp_path / plan
        folders[plan].mkdir()
        wedding_import(path=folders[plan], couple=f"{plan} couple", date=dt.date(2023, 6, 1), country="US",
                       plan=plan)
        (folders[plan] / "new.jpg").write_bytes(b"\xff\xd8\xff" + plan.encode() * 100)
    Schedule.objects.all().delete()
    Schedule.objects.create(task=Schedule.Task.SOURCE_SCAN, plan="premium", interval_minutes=60,
                            next_run_at=timezone.now() - dt.timedelta(seconds=1))
    schedules_dispatch()
    work("default")
    assert list(Asset.objects.filter(protected_at__isnull=False).values_list("wedding__plan", flat=True)) == [
        "premium"]
    assert not Asset.objects.filter(wedding__plan="standard").exists()
    result = Schedule.objects.get().last_result
    assert result["added"] == 1 and result["backups_started"] == 1


def test_a_failing_check_is_recorded_not_hidden(due, settings):
    Schedule.objects.exclude(task=Schedule.Task.ALERT_CHECK).delete()
    Alert.objects.all().delete()
    schedules_dispatch()
    settings.WEDBACKUP_ALERT_BELOW_POLICY_MINUTES = "not a number"
    work("default")
    result = Schedule.objects.get().last_result
    assert result["below_policy_check"] == "failed" and "stuck_jobs_check" not in [
        k for k, v in result.items() if v == "failed"]
