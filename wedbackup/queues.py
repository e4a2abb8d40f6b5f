"""Scheduling primitives on RQ that the apps share; this module imports no app.

Recurring jobs are registered with rq's own cron scheduler (``console.cron``, run by ``manage.py rqcron``);
what is left here is the one thing rq has no equivalent for: run a job once, shortly, however many callers
ask for it before it starts (a debounce).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable

import django_rq
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)


def enqueue_soon(func: Callable, *, job_id: str, delay: int = 30, queue: str = "bulk", **kwargs) -> str:
    """Run ``func`` once in ``delay`` seconds, however many callers ask before it starts: they coalesce on
    the pending run that a Redis marker names. A request made while that run is already executing
    schedules one more (with an id of its own: a running job's id is never reused). Never raises: the
    recurring job catches up on anything this misses. Returns the pending run's job id."""
    try:
        q = django_rq.get_queue(queue, commit_mode="auto")
        marker = f"wedbackup:soon:{job_id}"
        pending = q.connection.get(marker)
        if pending is not None:
            try:
                if Job.fetch(pending.decode(), connection=q.connection).get_status() in (
                        JobStatus.SCHEDULED, JobStatus.QUEUED):
                    return pending.decode()
            except NoSuchJobError:
                pass
        run_id = f"{job_id}-{uuid.uuid4().hex[:12]}"
        q.connection.set(marker, run_id, ex=delay + 3600)
        q.enqueue_in(dt.timedelta(seconds=delay), func, job_id=run_id, kwargs=kwargs, job_timeout=3600,
                     result_ttl=600)
        return run_id
    except Exception:
        log.exception("could not schedule %s", getattr(func, "__name__", func))
        return ""
