"""Recurring work as self-rescheduling RQ jobs (run by ``rqworker --with-scheduler``), one chain per kind.

A tick schedules its successor before it works (a crash mid-tick never breaks the chain) and a marker key
in Redis names the one legitimate next tick: a tick whose id is not the marker's is a stray duplicate and
stops. ``Chain.schedule()`` is idempotent: call it at every start (``runlocal``, ``schedule_periodic``).

The snapshot chain keeps the console's stored figures fresh: wedding health and usage every tick, the
cost model when its last snapshot is older than its own interval, and health-check retention.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import django_rq
from django.conf import settings
from django.utils import timezone
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)
_CONTINUE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
PENDING = (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED)


@dataclass(frozen=True)
class Chain:
    marker: str  # Redis key holding the id of the next legitimate tick
    func: str  # dotted path of the tick function
    queue: Callable[[], str]
    interval: Callable[[], int]  # seconds between ticks
    timeout: Callable[[], int]  # a tick's job timeout

    @property
    def prefix(self) -> str:
        return f"wedbackup-{self.marker.split(':')[1]}-"

    def _queue(self):
        return django_rq.get_queue(self.queue(), commit_mode="auto")

    def _ttl(self) -> int:
        return 3 * self.interval() + self.timeout() + 60

    def _options(self) -> dict:
        return {"job_timeout": self.timeout(), "result_ttl": 10 * self.interval()}

    def schedule(self) -> str:
        """Make sure exactly one tick is pending; returns its job id. Safe to call from every process."""
        queue = self._queue()
        conn = queue.connection
        current = conn.get(self.marker)
        if current is not None:
            try:
                status = Job.fetch(current.decode(), connection=conn).get_status()
            except NoSuchJobError:  # expired or deleted: the chain is broken, start a new one
                status = None
            if status in PENDING:
                return current.decode()
        next_id = f"{self.prefix}{uuid.uuid4().hex}"
        if not conn.eval(_CONTINUE, 1, self.marker, current or "", next_id, self._ttl()):
            return conn.get(self.marker).decode()  # another process won the race
        queue.enqueue(self.func, job_id=next_id, **self._options())
        return next_id

    def follow(self) -> bool:
        """Called by a running tick: schedule its successor. False when this tick is a stray duplicate
        (it should stop). Outside a worker (called directly) there is no chain to follow: True."""
        job = get_current_job()
        if job is None:
            return True
        queue = self._queue()
        next_id = f"{self.prefix}{uuid.uuid4().hex}"
        if not queue.connection.eval(_CONTINUE, 1, self.marker, job.id, next_id, self._ttl()):
            return False
        queue.enqueue_in(dt.timedelta(seconds=self.interval()), self.func, job_id=next_id, **self._options())
        return True


def snapshot_interval() -> int:
    return int(getattr(settings, "WEDBACKUP_SNAPSHOT_INTERVAL", 300))


def cost_snapshot_interval() -> int:
    return int(getattr(settings, "WEDBACKUP_COST_SNAPSHOT_INTERVAL", 3600))


SNAPSHOT_CHAIN = Chain(marker="wedbackup:snapshots:next-tick", func="wedbackup.periodic.snapshot_tick",
                       queue=lambda: "bulk", interval=snapshot_interval, timeout=lambda: 3600)


def cost_snapshot_due(now: dt.datetime | None = None) -> bool:
    from costs.models import CostSnapshot

    last = CostSnapshot.objects.order_by("-taken_at").values_list("taken_at", flat=True).first()
    return last is None or ((now or timezone.now()) - last).total_seconds() >= cost_snapshot_interval()


def snapshots_refresh(*, costs: bool | None = None) -> dict:
    """Refresh every wedding's stored health, the cost snapshot (when due, or when ``costs`` says so), and
    drop old health checks. Returns what was done, with timings."""
    from backups.snapshots import fleet_health_refresh
    from costs.snapshots import cost_snapshot_take
    from providers.health import health_checks_prune

    started = time.monotonic()
    result: dict = {"weddings": fleet_health_refresh()}
    result["weddings_seconds"] = round(time.monotonic() - started, 2)
    if costs or (costs is None and cost_snapshot_due()):
        result["cost_snapshot"] = cost_snapshot_take().pk
        result["cost_seconds"] = round(time.monotonic() - started - result["weddings_seconds"], 2)
    result["health_checks_pruned"] = health_checks_prune()
    log.info("snapshots refreshed: %s", result)
    return result


def snapshot_tick() -> dict:
    """RQ entry of the snapshot chain."""
    if not SNAPSHOT_CHAIN.follow():
        return {"stray": True}
    return snapshots_refresh()


def schedule_all() -> dict[str, str]:
    """Start (or confirm) every recurring chain: the health probes and the console snapshots."""
    from providers.health import HEALTH_CHAIN

    return {"health": HEALTH_CHAIN.schedule(), "snapshots": SNAPSHOT_CHAIN.schedule()}


def enqueue_soon(func: str, *, job_id: str, delay: int = 30, queue: str = "bulk", **kwargs) -> str:
    """Run ``func`` once in ``delay`` seconds, however many callers ask before it starts: they coalesce on
    the pending run that a Redis marker names. A request made while that run is already executing
    schedules one more (with an id of its own: a running job's id is never reused). Never raises: the
    periodic chain catches up on anything this misses. Returns the pending run's job id."""
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
        log.exception("could not schedule %s", func)
        return ""


def fleet_health_soon() -> str:
    """After a provider's status changed: every wedding's stored protection is recomputed shortly."""
    return enqueue_soon("backups.snapshots.fleet_health_refresh", job_id="wedbackup-soon-fleet-health")


def cost_snapshot_soon() -> str:
    """After copies moved (an apply): the cost snapshot is taken again shortly."""
    return enqueue_soon("costs.snapshots.cost_snapshot_take", job_id="wedbackup-soon-cost-snapshot")
