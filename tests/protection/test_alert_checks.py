"""Below policy, failed and stuck jobs: each fires once, repeats at the interval and resolves when its condition ends
(real rows, the stored WeddingHealth, real e-mail and a real webhook server)."""

from __future__ import annotations

import datetime as dt

import django_rq
import pytest
from django.utils import timezone
from rq.job import Job

from backups.models import BackupJob, BackupPolicy, Replica
from backups.snapshots import weddings_refresh
from backups.tasks import backup_start
from protection.checks import BELOW_POLICY_SEEN, alerts_check
from providers.models import Provider
from tests.factories import make_asset, make_provider, make_wedding
from tests.protection.alerting import mails_about, open_alert, repeat_due, sent

pytestmark = pytest.mark.django_db
Status = BackupJob.Status


@pytest.fixture(autouse=True)
def _fresh_first_seen():
    conn = django_rq.get_connection("default")
    conn.delete(BELOW_POLICY_SEEN)
    yield
    conn.delete(BELOW_POLICY_SEEN)


@pytest.fixture
def one_copy_policy():
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers = 1, 1
    policy.save()
    return policy


def ago(**kwargs) -> dt.datetime:
    return timezone.now() - dt.timedelta(**kwargs)


def verified_copy(asset, provider) -> Replica:
    return Replica.objects.create(asset=asset, provider=provider, object_key=f"weddings/x/{asset.pk}", size=asset.size,
                                  sha256=asset.sha256, status=Replica.Status.VERIFIED, verified_at=timezone.now())


# -- below policy -------------------------------------------------------------------------------------------------
def test_a_wedding_below_policy_alerts_after_the_threshold_repeats_and_resolves(channels, one_copy_policy):
    got, _ = channels
    wedding = make_wedding(couple="Cleo & Dan")
    asset = make_asset(wedding, seen_complete_at=ago(minutes=30))
    key = f"below_policy:{wedding.pk}"
    weddings_refresh([wedding.pk])
    alerts_check()
    assert open_alert(key) is None  # 30 minutes below policy: under the 60 minute threshold

    asset.seen_complete_at = ago(minutes=90)
    asset.save()
    weddings_refresh([wedding.pk])
    result = alerts_check()
    alert = open_alert(key)
    assert result["below_policy"] == 1
    assert alert.subject.startswith("Cleo & Dan") and "1 files below policy" in alert.subject
    assert sent(got, key) == ["opened"] and len(mails_about("Cleo & Dan")) == 1
    alerts_check()
    assert sent(got, key) == ["opened"]  # still open, not due again
    repeat_due(key)
    alerts_check()
    assert sent(got, key) == ["opened", "still open"] and open_alert(key).sent_count == 2

    verified_copy(asset, make_provider())
    weddings_refresh([wedding.pk])
    result = alerts_check()
    assert open_alert(key) is None and result["resolved"] == 1
    assert sent(got, key) == ["opened", "still open", "resolved"]


def test_a_wedding_that_lost_its_copies_counts_from_when_a_sweep_first_saw_it(channels, one_copy_policy):
    got, _ = channels
    wedding = make_wedding()
    provider = make_provider()
    verified_copy(make_asset(wedding, seen_complete_at=ago(days=3), protected_at=ago(days=3)), provider)
    Provider.objects.filter(pk=provider.pk).update(status=Provider.Status.DOWN)  # its copies stop counting
    weddings_refresh([wedding.pk])
    key = f"below_policy:{wedding.pk}"
    alerts_check()
    assert open_alert(key) is None  # protected three days ago: at risk only since this sweep saw it
    conn = django_rq.get_connection("default")
    conn.hset(BELOW_POLICY_SEEN, str(wedding.pk), ago(minutes=61).timestamp())
    alerts_check()
    assert sent(got, key) == ["opened"]

    Provider.objects.filter(pk=provider.pk).update(status=Provider.Status.ACTIVE)
    weddings_refresh([wedding.pk])
    alerts_check()
    assert sent(got, key) == ["opened", "resolved"]
    assert conn.hget(BELOW_POLICY_SEEN, str(wedding.pk)) is None  # a later outage starts its own clock


# -- failed jobs --------------------------------------------------------------------------------------------------
def test_a_failed_job_alerts_once_per_wedding_and_kind_and_resolves_when_one_succeeds(channels):
    got, _ = channels
    wedding = make_wedding(couple="Eve & Finn")
    BackupJob.objects.create(wedding=wedding, kind="backup", status=Status.FAILED, finished_at=ago(hours=3))
    BackupJob.objects.create(wedding=wedding, kind="backup", status=Status.PARTIAL, finished_at=ago(hours=1),
                             files_done=8, files_failed=2, error_summary="b2: 403 AccessDenied")
    key = f"job_failed:{wedding.pk}:backup"
    assert alerts_check()["job_failed"] == 1
    alert = open_alert(key)
    assert "backup of Eve & Finn partial" in alert.subject and "403 AccessDenied" in alert.detail
    assert sent(got, key) == ["opened"]
    alerts_check()
    repeat_due(key)
    alerts_check()
    assert sent(got, key) == ["opened", "still open"]

    BackupJob.objects.create(wedding=wedding, kind="verify", status=Status.SUCCEEDED, finished_at=timezone.now())
    alerts_check()
    assert open_alert(key) is not None  # a verify succeeding says nothing about backups
    BackupJob.objects.create(wedding=wedding, kind="backup", status=Status.SUCCEEDED, finished_at=timezone.now())
    alerts_check()
    assert sent(got, key) == ["opened", "still open", "resolved"]


def test_an_open_job_alert_outlives_the_one_day_window_and_old_failures_open_none(channels):
    got, _ = channels
    old, recent = make_wedding(), make_wedding()
    BackupJob.objects.create(wedding=old, kind="backup", status=Status.FAILED, finished_at=ago(days=2))
    job = BackupJob.objects.create(wedding=recent, kind="repair", status=Status.FAILED, finished_at=ago(hours=23))
    alerts_check()
    assert open_alert(f"job_failed:{old.pk}:backup") is None
    assert open_alert(f"job_failed:{recent.pk}:repair") is not None
    BackupJob.objects.filter(pk=job.pk).update(finished_at=ago(days=2))  # a day later, still no success
    alerts_check()
    assert open_alert(f"job_failed:{recent.pk}:repair") is not None


def test_a_failed_fleet_job_has_its_own_alert(channels):
    got, _ = channels
    BackupJob.objects.create(kind="optimise", status=Status.FAILED, finished_at=ago(minutes=5))
    alerts_check()
    assert sent(got, "job_failed:fleet:optimise") == ["opened"]
    BackupJob.objects.create(kind="optimise", status=Status.SUCCEEDED, finished_at=timezone.now())
    alerts_check()
    assert sent(got, "job_failed:fleet:optimise") == ["opened", "resolved"]


# -- stuck jobs ---------------------------------------------------------------------------------------------------
def test_a_job_running_too_long_alerts_repeats_and_resolves_when_it_ends(channels):
    got, _ = channels
    wedding = make_wedding(couple="Gus & Hal")
    fresh = BackupJob.objects.create(wedding=wedding, kind="backup", status=Status.QUEUED)
    stuck = BackupJob.objects.create(wedding=wedding, kind="backup", status=Status.RUNNING, started_at=ago(hours=3))
    key = f"job_stuck:{stuck.pk}"
    assert alerts_check()["job_stuck"] == 1
    assert open_alert(f"job_stuck:{fresh.pk}") is None
    assert "backup of Gus & Hal is stuck" in open_alert(key).subject and "running since" in open_alert(key).detail
    repeat_due(key)
    alerts_check()
    assert sent(got, key) == ["opened", "still open"]
    BackupJob.objects.filter(pk=stuck.pk).update(status=Status.SUCCEEDED, finished_at=timezone.now())
    alerts_check()
    assert sent(got, key) == ["opened", "still open", "resolved"]


def test_a_queued_job_whose_rq_job_is_gone_is_stuck_at_once(channels, rq_queues):
    got, _ = channels
    wedding = make_wedding()
    alive = BackupJob.objects.create(wedding=wedding, kind="verify", queue="bulk")
    rq_job = django_rq.get_queue("bulk", commit_mode="auto").enqueue(print, "not run")
    BackupJob.objects.filter(pk=alive.pk).update(rq_job_id=rq_job.id)
    lost = BackupJob.objects.create(wedding=wedding, kind="verify", queue="bulk", rq_job_id="no-such-rq-job")
    alerts_check()
    assert open_alert(f"job_stuck:{alive.pk}") is None
    assert "its RQ job is gone" in open_alert(f"job_stuck:{lost.pk}").detail
    BackupJob.objects.filter(pk=lost.pk).update(status=Status.CANCELLED)
    alerts_check()
    assert sent(got, f"job_stuck:{lost.pk}") == ["opened", "resolved"]


@pytest.mark.django_db(transaction=True)
def test_a_backup_whose_rq_job_died_for_good_is_stuck_at_once(channels, rq_queues, tmp_path):
    make_provider(name="nas", kind="watched_folder", bucket=str(tmp_path / "nas"), options={"create": True})
    job = backup_start(wedding=make_wedding())  # the engine records the RQ job carrying it on
    job.refresh_from_db()
    assert job.rq_job_id
    alerts_check()
    assert open_alert(f"job_stuck:{job.pk}") is None  # queued and alive
    Job.fetch(job.rq_job_id, connection=django_rq.get_connection("default")).delete()  # e.g. lost with its Redis
    alerts_check()
    assert "its RQ job is gone" in open_alert(f"job_stuck:{job.pk}").detail


def test_the_thresholds_are_settings(channels, settings):
    settings.WEDBACKUP_ALERT_STUCK_MINUTES = 5
    job = BackupJob.objects.create(kind="import", status=Status.RUNNING, started_at=ago(minutes=6))
    alerts_check()
    assert open_alert(f"job_stuck:{job.pk}") is not None
    settings.WEDBACKUP_ALERT_STUCK_MINUTES = 10
    alerts_check()
    assert open_alert(f"job_stuck:{job.pk}") is None
