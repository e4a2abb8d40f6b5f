"""The recurring jobs on rq's cron scheduler (console.cron, loaded by `manage.py rqcron console.cron`)."""

import uuid

import django_rq
import pytest
from django.core.management import get_commands
from django_rq.cron import DjangoCronScheduler
from rq import SimpleWorker

from backups.models import WeddingHealth
from backups.rehydration import rehydrations_resume
from backups.tasks import retention_renew_job, system_db_backup_job
from console.tasks import snapshots_refresh
from costs.models import CostSnapshot
from costs.snapshots import cost_snapshot_take
from costs.tiering_rules import tiering_classes_sync_all
from protection.tasks import schedules_dispatch
from providers.health import health_tick
from providers.models import ProviderHealthCheck
from tests.factories import make_asset, make_provider, make_wedding


@pytest.fixture
def scheduler(settings, rq_queues):
    settings.WEDBACKUP_HEALTH_INTERVAL = 30
    settings.WEDBACKUP_SNAPSHOT_INTERVAL = 300
    settings.WEDBACKUP_COST_SNAPSHOT_INTERVAL = 3600
    settings.WEDBACKUP_BREAKER_PREFIX = f"test:breaker:{uuid.uuid4().hex}"
    cron = DjangoCronScheduler()
    cron.load_config_from_file("console.cron")  # what the rqcron command does
    return cron


def jobs_by_name(cron) -> dict:
    return {job.name: job for job in cron.get_jobs()}


def test_the_rqcron_command_is_installed():
    assert get_commands()["rqcron"] == "django_rq"


def test_probes_snapshots_and_costs_are_registered_on_their_queues_at_their_intervals(scheduler):
    jobs = jobs_by_name(scheduler)
    assert {name: (job.func, job.queue_name, job.interval) for name, job in jobs.items()} == {
        "health-probes": (health_tick, "health", 30),
        "fleet-snapshots": (snapshots_refresh, "bulk", 300),
        "cost-snapshot": (cost_snapshot_take, "bulk", 3600),
        "retention-renew": (retention_renew_job, "bulk", 86400),
        "system-db-backup": (system_db_backup_job, "bulk", 86400),
        "schedules": (schedules_dispatch, "health", 60),
        "rehydrations-resume": (rehydrations_resume, "default", 3600),
        "lifecycle-sync": (tiering_classes_sync_all, "bulk", 86400),
    }
    assert jobs["fleet-snapshots"].kwargs == {"costs": False}  # the cost model has a schedule of its own


def test_a_job_not_started_within_its_interval_expires_instead_of_piling_up(scheduler):
    for job in scheduler.get_jobs():
        assert job.job_options["ttl"] == job.interval


def test_intervals_follow_the_settings(settings, rq_queues):
    settings.WEDBACKUP_HEALTH_INTERVAL = 7
    cron = DjangoCronScheduler()
    cron.load_config_from_file("console.cron")
    assert jobs_by_name(cron)["health-probes"].interval == 7


def test_every_job_is_enqueued_at_start_then_only_when_due(scheduler):
    enqueued = scheduler.enqueue_jobs()
    assert sorted(j.name for j in enqueued) == ["cost-snapshot", "fleet-snapshots", "health-probes",
                                                "lifecycle-sync", "rehydrations-resume", "retention-renew",
                                                "schedules", "system-db-backup"]
    assert [django_rq.get_queue(q).count for q in ("health", "bulk")] == [2, 5]
    assert scheduler.enqueue_jobs() == []  # none is due again yet
    assert django_rq.get_queue("health").count == 2


@pytest.mark.django_db(transaction=True)
def test_the_enqueued_jobs_probe_the_providers_and_refresh_the_stored_figures(scheduler, tmp_path):
    folder = tmp_path / "nas"
    folder.mkdir()
    provider = make_provider(name="nas", kind="watched_folder", region="us-east-1", bucket=str(folder))
    wedding = make_wedding()
    make_asset(wedding, size=10)
    scheduler.enqueue_jobs()
    for queue in ("health", "bulk"):
        django_rq.get_worker(queue, worker_class=SimpleWorker).work(burst=True, with_scheduler=False)
    assert ProviderHealthCheck.objects.filter(provider=provider, ok=True).count() == 1
    assert WeddingHealth.objects.get(wedding=wedding).at_risk
    assert CostSnapshot.objects.count() == 1
