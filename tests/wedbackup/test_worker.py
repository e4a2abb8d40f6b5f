"""The project's RQ worker: the job modules and SDKs load before any fork; abandoned jobs are found fast."""

import os
import subprocess
import sys
import time
from pathlib import Path

import django_rq
import pytest
from rq import Queue, Retry
from rq.job import JobStatus
from rq.utils import now

from wedbackup.worker import Worker, worker_preload

ROOT = Path(__file__).resolve().parents[2]


def worker() -> Worker:
    return django_rq.get_worker("bulk", worker_class=Worker)


def test_the_settings_make_it_the_rqworker_class():
    assert type(django_rq.get_worker("bulk")) is Worker


def test_it_imports_the_job_modules_before_it_forks(monkeypatch, settings, rq_queues):
    for name in ("backups.tasks", "costs.tasks", "console.tasks"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    worker().work(burst=True, with_scheduler=False)  # an empty queue: it starts, finds nothing, stops
    assert {"backups.tasks", "costs.tasks", "console.tasks"} <= set(sys.modules)


def test_a_module_function_entry_is_called(monkeypatch):
    monkeypatch.delitem(sys.modules, "providers.backends.box", raising=False)
    worker_preload(["providers.backends:backends_preload"])
    assert "providers.backends.box" in sys.modules  # every backend module, imported once


def test_a_wrong_entry_fails_loudly():
    with pytest.raises(ModuleNotFoundError):
        worker_preload(["no_such_module_here"])
    with pytest.raises(AttributeError):
        worker_preload(["providers.backends:no_such_function"])


# -- abandoned jobs: rq's started registry, with the project's thresholds -----------------------------------
def test_a_running_jobs_registry_entry_lives_from_one_heartbeat_to_the_abandonment_threshold(settings, rq_queues):
    settings.WEDBACKUP_WORKER_HEARTBEAT, settings.WEDBACKUP_WORKER_ABANDONED_AFTER = 10, 30
    w = worker()
    job = django_rq.get_queue("bulk").enqueue(time.sleep, 0, job_timeout=3600)
    assert w.job_monitoring_interval == 10
    assert w.get_heartbeat_ttl(job) == 30  # renewed every 10 s, so only a dead worker's entry runs out
    assert w.get_heartbeat_ttl(job, working_time=3595) == 5 + 20  # near the job's timeout, as rq does


def test_an_idle_worker_wakes_for_maintenance_every_interval(settings):
    settings.WEDBACKUP_WORKER_MAINTENANCE_INTERVAL = 15
    w = worker()
    assert w.maintenance_interval == 15 and w.dequeue_timeout == 15  # rq's: worker_ttl - 15 = 405 s


def test_maintenance_requeues_a_job_whose_heartbeats_stopped(settings, rq_queues):
    """A dead worker's job, as rq 3.0 leaves it: STARTED, in the started registry, no longer renewed."""
    settings.WEDBACKUP_WORKER_HEARTBEAT, settings.WEDBACKUP_WORKER_ABANDONED_AFTER = 1, 2
    settings.WEDBACKUP_WORKER_MAINTENANCE_INTERVAL = 1
    dead, live = worker(), worker()
    queue = django_rq.get_queue("bulk")
    job = queue.enqueue(time.sleep, 0, retry=Retry(max=3))
    job, _ = Queue.dequeue_any([queue], None, connection=queue.connection)
    execution = dead.prepare_execution(job)  # what the worker and its horse do before it runs; no heartbeat follows
    dead.prepare_job_execution(job)
    # rq keeps the execution's id in the job's ExecutionRegistry 60 s past the entry: its hash must live as long,
    # or deleting the job meanwhile raises (Execution.fetch).
    registry_entry_left = queue.connection.zscore(job.execution_registry.key, execution.id) - time.time()
    assert queue.connection.ttl(execution.key) >= registry_entry_left > 60
    assert job.get_status() == JobStatus.STARTED and queue.count == 0

    def requeued() -> bool:
        live.clean_registries()
        job.refresh()
        return job.get_status() == JobStatus.QUEUED

    deadline = time.monotonic() + 10
    while not requeued():
        assert time.monotonic() < deadline, "not re-queued"
        time.sleep(0.2)
    assert job.retries_left == 2 and queue.job_ids == [job.id]
    assert not queue.connection.exists(queue.registry_cleaning_key)  # released after cleaning
    job.delete()


def test_a_busy_worker_runs_maintenance_from_its_heartbeat(settings, rq_queues, monkeypatch):
    settings.WEDBACKUP_WORKER_MAINTENANCE_INTERVAL = 1
    w = worker()
    w.register_birth()
    queue = django_rq.get_queue("bulk")
    queue.enqueue(time.sleep, 0)
    job, _ = Queue.dequeue_any([queue], None, connection=queue.connection)
    execution = w.prepare_execution(job)
    ran: list[bool] = []
    monkeypatch.setattr(w, "run_maintenance_tasks", lambda: ran.append(True))
    w.last_cleaned_at = None
    w.maintain_heartbeats(job, execution)
    assert ran == [True]
    w.last_cleaned_at = now()
    w.maintain_heartbeats(job, execution)
    assert ran == [True]  # not due yet
    w.register_death()


def test_a_heartbeat_not_shorter_than_the_threshold_is_refused():
    env = {**os.environ, "WEDBACKUP_WORKER_HEARTBEAT": "30", "WEDBACKUP_WORKER_ABANDONED_AFTER": "30"}
    result = subprocess.run([sys.executable, "-c", "import wedbackup.settings"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "WEDBACKUP_WORKER_HEARTBEAT" in result.stderr


ARENAS_SCRIPT = """
import ctypes, sys, threading
from wedbackup.worker import malloc_arenas_limit
print(malloc_arenas_limit(arenas=int(sys.argv[1])), flush=True)
barrier, held = threading.Barrier(9), []
def allocate():
    held.append([bytearray(200_000) for _ in range(20)])  # malloc'd (over pymalloc's size), in this thread's arena
    barrier.wait()  # all eight threads allocate at once
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads:
    t.start()
barrier.wait()
ctypes.CDLL(None).malloc_stats()  # glibc: one "Arena N:" block per arena, on stderr
barrier.wait()
for t in threads:
    t.join()
"""


def arenas_used(limit: int, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", ARENAS_SCRIPT, str(limit)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**environ, **env}, check=True)
    return done.stdout.strip(), sum(line.startswith("Arena ") for line in done.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_the_worker_caps_mallocs_arenas_and_leaves_an_explicit_setting_alone():
    applied, capped = arenas_used(2)
    assert applied == "True"
    assert capped <= 2
    applied, default = arenas_used(0)  # 0: glibc's default, one arena per thread allocating at once
    assert applied == "False"
    assert default > 2
    applied, chosen = arenas_used(2, MALLOC_ARENA_MAX="4")  # the operator's variable wins
    assert applied == "False"
    assert 2 < chosen <= 4
    applied, chosen = arenas_used(2, GLIBC_TUNABLES="glibc.malloc.arena_max=4")  # and so does glibc's tunable
    assert applied == "False"
    assert 2 < chosen <= 4
