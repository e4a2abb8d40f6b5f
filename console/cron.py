"""The recurring jobs, on rq's own cron scheduler: ``manage.py rqcron console.cron`` (one process per
deployment; ``make run`` starts it). Each job is enqueued on its queue at its interval, and expires unstarted
after one interval (``ttl``), so a backlog never piles up probes or refreshes behind slow workers. rq keeps
each job's history; django-rq's views show it. Intervals come from the settings when this module is loaded.
"""

from __future__ import annotations

from django.conf import settings
from rq import cron

from backups.rehydration import rehydrations_resume
from backups.tasks import retention_renew_job, system_db_backup_job
from costs.snapshots import cost_snapshot_take
from costs.tiering_rules import tiering_classes_sync_all
from protection.tasks import schedules_dispatch
from providers.health import health_tick, probe_timeout

from .tasks import cost_snapshot_interval, snapshots_refresh


def snapshot_interval() -> int:
    return int(getattr(settings, "WEDBACKUP_SNAPSHOT_INTERVAL", 300))


def schedule_tick() -> int:
    return int(getattr(settings, "WEDBACKUP_SCHEDULE_TICK", 60))


def health_interval() -> int:
    return int(getattr(settings, "WEDBACKUP_HEALTH_INTERVAL", 30))


def jobs_register() -> None:
    """Register every recurring job with ``rq.cron`` (what the scheduler loads from this module)."""
    health = health_interval()
    cron.register(health_tick, settings.WEDBACKUP_HEALTH_QUEUE, interval=health, ttl=health,
                  job_timeout=int(probe_timeout()) + 120, result_ttl=10 * health, name="health-probes")
    every = snapshot_interval()
    cron.register(snapshots_refresh, "bulk", kwargs={"costs": False}, interval=every, ttl=every, job_timeout=3600,
                  result_ttl=10 * every, name="fleet-snapshots")
    # The schedules (protection.Schedule rows: source scans, scrub, drills, alert checks) are data; one small
    # dispatcher reads them every minute and enqueues what is due.
    tick = schedule_tick()
    cron.register(schedules_dispatch, settings.WEDBACKUP_HEALTH_QUEUE, interval=tick, ttl=tick, job_timeout=120,
                  result_ttl=10 * tick, name="schedules")
    # A rehydration polls itself with rq's scheduler; this puts back a poll that Redis lost.
    cron.register(rehydrations_resume, "default", interval=3600, ttl=3600, job_timeout=600, result_ttl=36000,
                  name="rehydrations-resume")
    daily = 24 * 3600
    cron.register(retention_renew_job, "bulk", interval=daily, ttl=daily, job_timeout=3600, result_ttl=7 * daily,
                  name="retention-renew")
    cron.register(system_db_backup_job, "bulk", interval=daily, ttl=daily, job_timeout=3600, result_ttl=7 * daily,
                  name="system-db-backup")
    # Our bucket lifecycle rules move objects between classes without telling us: record where they are now
    # (one LIST per 1,000 objects, only on providers holding our rules), so costs and restores see the class.
    cron.register(tiering_classes_sync_all, "bulk", interval=daily, ttl=daily, job_timeout=3600,
                  result_ttl=7 * daily, name="lifecycle-sync")
    hourly = cost_snapshot_interval()
    cron.register(cost_snapshot_take, "bulk", interval=hourly, ttl=hourly, job_timeout=3600, result_ttl=10 * hourly,
                  name="cost-snapshot")


jobs_register()
