"""The protection app's jobs: the schedule dispatcher (on rq's cron, every minute) and the run of one schedule.
Each schedule's work is one function elsewhere in this app; here it is only looked up, timed and recorded."""

from __future__ import annotations

import time
from collections.abc import Callable

import django_rq
from django.conf import settings
from django.utils import timezone
from rq import Retry
from rq.job import Job

from .checks import alerts_check
from .drills import drills_run
from .models import Schedule
from .schedules import schedules_claim
from .scrub import scrub_run
from .sources import sources_scan

# task -> (queue, what it runs, a short summary of its result for the schedules page)
RUNNERS: dict[str, tuple[str, Callable[[Schedule], dict]]] = {
    Schedule.Task.SOURCE_SCAN: ("default", lambda s: _scan_summary(sources_scan(plan=s.plan))),
    Schedule.Task.SCRUB: ("bulk", lambda s: _scrub_summary(scrub_run())),
    Schedule.Task.DRILL: ("bulk", lambda s: _drill_summary(drills_run())),
    # Not on the health queue: the checks look at source folders, and a hung network mount must never hold up
    # the provider probes.
    Schedule.Task.ALERT_CHECK: ("default", lambda s: alerts_check()),
}


def schedules_dispatch() -> list[str]:
    """RQ cron entry (every minute): claim the due schedules and enqueue one run of each; returns what started.
    An unstarted run expires after one interval, so a backlog never stacks up runs of one schedule. An enqueue
    that fails leaves its schedule due (the claim rolls back); one already enqueued for that occurrence is not
    enqueued again."""
    return [str(s) for s in schedules_claim(now=timezone.now(), start=schedule_enqueue)]


def schedule_enqueue(schedule: Schedule, job_id: str) -> None:
    """Enqueue one run of ``schedule`` as RQ job ``job_id``, unless that job exists already (raises when Redis
    cannot be reached: the caller's claim rolls back)."""
    queue_name, _ = RUNNERS[schedule.task]
    queue = django_rq.get_queue(queue_name, commit_mode="auto")
    if Job.exists(job_id, connection=queue.connection):
        return
    interval = schedule.interval_minutes * 60
    queue.enqueue(schedule_run, schedule.pk, job_id=job_id, ttl=interval, result_ttl=max(interval * 3, 3600),
                  job_timeout=settings.RQ_QUEUES[queue_name]["DEFAULT_TIMEOUT"], retry=Retry(max=1))


def schedule_run(schedule_id: int) -> dict:
    """RQ entry: run one schedule's work and record a summary (or the error) on its row."""
    schedule = Schedule.objects.get(pk=schedule_id)
    began = time.monotonic()
    try:
        result = RUNNERS[schedule.task][1](schedule)
    except Exception as exc:
        Schedule.objects.filter(pk=schedule_id).update(
            last_result={"error": f"{type(exc).__name__}: {exc}"[:500], "at": timezone.now().isoformat()})
        raise
    summary = {**result, "seconds": round(time.monotonic() - began, 1)}
    Schedule.objects.filter(pk=schedule_id).update(last_result=summary)
    return summary


def _scan_summary(counts: dict) -> dict:
    problems = counts.get("problems") or {}
    return {k: counts[k] for k in ("weddings", "added", "changed", "removed", "pending", "backups_started")
            if k in counts} | {"problems": len(problems)}


def _scrub_summary(run) -> dict:
    return {"copies_read": run.replicas_checked, "bytes": run.bytes_read, "metadata_only": run.metadata_only,
            "mismatches": run.mismatches, "repairs": run.repairs_started}


def _drill_summary(drills: list) -> dict:
    done = [d for d in drills if d.ok is not None]
    return {"providers": len(drills), "passed": sum(1 for d in done if d.ok),
            "failed": sum(1 for d in done if not d.ok)}
