"""The RQ worker class the project's ``rqworker`` uses (``settings.RQ["WORKER_CLASS"]``).

It imports what ``WEDBACKUP_WORKER_PRELOAD`` names (the job modules, and with them the cloud SDKs and boto3's
model) before it forks its first work horse, so every horse inherits them instead of importing them again
for each job. Recurring jobs are not the worker's business: rq's cron scheduler (``manage.py rqcron``) runs
them.

Abandoned jobs are found by rq's own mechanism, tuned here: while a horse runs, its worker renews the job's
entry in the queue's ``StartedJobRegistry`` every ``job_monitoring_interval`` seconds; an entry past its score
belongs to a dead worker, and ``StartedJobRegistry.cleanup`` (worker maintenance) re-queues the job while it has
retries left. Stock rq 3.0 lets an entry live 60 s past the next heartbeat and runs maintenance every 10 minutes,
and only from a worker between jobs (an idle one blocks on the queues for ``worker_ttl - 15`` s). Here the entry
lives ``WEDBACKUP_WORKER_ABANDONED_AFTER`` s from a heartbeat, maintenance runs every
``WEDBACKUP_WORKER_MAINTENANCE_INTERVAL`` s from idle and busy workers alike, and a queue's cleaning lock lasts
one interval (rq's 15 minutes would let a machine killed while cleaning stop everyone's cleaning for that long).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import signal
import sys

import redis.exceptions
from django.conf import settings
from rq import Worker as RQWorker
from rq import worker_registration
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.registry import clean_registries
from rq.utils import now

log = logging.getLogger(__name__)


def worker_preload(paths: list[str]) -> None:
    """Import each ``module``, or import ``module`` and call its ``function`` for ``module:function``."""
    for path in paths:
        module, _, function = path.partition(":")
        loaded = importlib.import_module(module)
        if function:
            getattr(loaded, function)()


M_ARENA_MAX = -8  # glibc's mallopt parameter


def malloc_arenas_limit(*, arenas: int) -> bool:
    """Cap glibc's malloc arenas for this process and the work horses it forks (True when applied).

    glibc gives each thread that allocates at once an arena of its own (up to 8 per core), and freed memory
    stays in them: an upload batch's threads took a worker to 311-335 MB; with 2 arenas, 278 MB for the same CPU
    (bench/RESULTS.md). ``MALLOC_ARENA_MAX`` or ``GLIBC_TUNABLES=glibc.malloc.arena_max``, when set, win; 0 keeps
    glibc's default; elsewhere than glibc, nothing is done."""
    chosen = "MALLOC_ARENA_MAX" in os.environ or "glibc.malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", "")
    if arenas <= 0 or chosen or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:  # a libc without mallopt (musl)
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


PR_SET_PDEATHSIG = 1


def die_with_parent(*, parent_pid: int) -> None:
    """Linux: this process is killed when its parent dies; exits now if the parent is already gone."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


class Worker(RQWorker):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("job_monitoring_interval", settings.WEDBACKUP_WORKER_HEARTBEAT)
        kwargs.setdefault("maintenance_interval", settings.WEDBACKUP_WORKER_MAINTENANCE_INTERVAL)
        super().__init__(*args, **kwargs)
        self.abandoned_after = max(settings.WEDBACKUP_WORKER_ABANDONED_AFTER, self.job_monitoring_interval + 1)

    def work(self, *args, **kwargs) -> bool:
        malloc_arenas_limit(arenas=settings.WEDBACKUP_WORKER_MALLOC_ARENAS)  # before any thread or fork
        worker_preload(list(getattr(settings, "WEDBACKUP_WORKER_PRELOAD", [])))
        return super().work(*args, **kwargs)

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        self._parent_pid = os.getpid()
        super().fork_work_horse(job, queue)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # A horse outliving its worker (the worker alone OOM-killed or kill -9'd) would upload on while its job,
        # no longer renewed, is re-queued and run again elsewhere.
        die_with_parent(parent_pid=self._parent_pid)
        super().main_work_horse(job, queue)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Seconds the job's started-registry entry lives from this heartbeat: rq's own formula (up to the next
        heartbeat, or to the job's timeout when that comes first) with our grace instead of rq's fixed 60 s."""
        interval = float(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            interval = max(1.0, min(job.timeout - working_time, interval))
        return int(interval) + self.abandoned_after - self.job_monitoring_interval

    def prepare_execution(self, job: Job) -> Execution:
        execution = super().prepare_execution(job)
        self._outlive_execution_registry(execution)
        return execution

    def _outlive_execution_registry(self, execution: Execution) -> None:
        # rq keeps a job's execution id in its ExecutionRegistry 60 s longer than the execution's hash, and
        # deleting the job in between raises (Execution.fetch): the hash lives as long as the registry's entry.
        self.connection.expire(execution.key, self.abandoned_after + 60)

    @property
    def dequeue_timeout(self) -> int:
        # An idle worker runs maintenance only between two blocking waits on its queues.
        return max(1, min(self.worker_ttl - 15, self.maintenance_interval))

    def maintain_heartbeats(self, job: Job, execution: Execution) -> None:
        super().maintain_heartbeats(job, execution)
        self._outlive_execution_registry(execution)
        # rq maintains only between jobs; a fleet busy with long uploads would leave a dead machine's job alone.
        if self.should_run_maintenance_tasks:
            try:
                self.run_maintenance_tasks()
            except redis.exceptions.RedisError:
                log.warning("worker %s: maintenance failed; next heartbeat tries again", self.name, exc_info=True)

    def clean_registries(self) -> None:
        """rq's ``clean_registries`` with a queue's cleaning lock held for one maintenance interval at most."""
        lock_seconds = max(1, int(self.maintenance_interval))
        for queue in self.queues:
            # A token lock (redis-py's: released only by its holder): a cleaning that outlives the lock must not
            # release the next cleaner's, or two would re-queue one abandoned job twice and it would run twice.
            lock = queue.connection.lock(queue.registry_cleaning_key, timeout=lock_seconds)
            if lock.acquire(blocking=False):
                try:
                    self.log.debug("Worker %s: cleaning registries for queue: %s", self.name, queue.name)
                    clean_registries(queue, self._exc_handlers)
                    worker_registration.clean_worker_registry(queue)
                    queue.intermediate_queue.cleanup(self, queue)
                finally:
                    with contextlib.suppress(redis.exceptions.LockError):  # expired meanwhile: not ours now
                        lock.release()
        self.last_cleaned_at = now()
