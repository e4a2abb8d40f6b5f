"""The project's RQ worker: the recurring chains come back on their own, the SDKs load before any fork."""

import contextlib
import dataclasses
import sys
import uuid

import django_rq
import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job

from providers import health
from wedbackup import periodic
from wedbackup.worker import Worker


@pytest.fixture
def chains(monkeypatch):
    """Both chains under markers of their own, so no other test's chain is touched; their jobs removed after."""
    tag = uuid.uuid4().hex[:8]
    snap = dataclasses.replace(periodic.SNAPSHOT_CHAIN, marker=f"wedbackup:snapshots-{tag}:next-tick")
    probe = dataclasses.replace(health.HEALTH_CHAIN, marker=f"wedbackup:health-{tag}:next-tick")
    monkeypatch.setattr(periodic, "SNAPSHOT_CHAIN", snap)
    monkeypatch.setattr(health, "HEALTH_CHAIN", probe)
    yield snap, probe
    conn = django_rq.get_connection("default")
    for chain in (snap, probe):
        job_id = conn.get(chain.marker)
        if job_id:
            with contextlib.suppress(NoSuchJobError):
                Job.fetch(job_id.decode(), connection=conn).delete(remove_from_queue=True)
        conn.delete(chain.marker)


def worker() -> Worker:
    return django_rq.get_worker("bulk", worker_class=Worker)


def test_the_settings_make_it_the_rqworker_class():
    assert type(django_rq.get_worker("bulk")) is Worker


def test_maintenance_schedules_both_chains_and_again_after_redis_lost_them(chains, settings):
    settings.WEDBACKUP_WORKER_SCHEDULES = True
    snap, probe = chains
    conn = django_rq.get_connection("default")
    worker().run_maintenance_tasks()
    first = {c.marker: conn.get(c.marker).decode() for c in chains}
    assert all(Job.fetch(job_id, connection=conn).get_status() == "queued" for job_id in first.values())
    worker().run_maintenance_tasks()
    assert {c.marker: conn.get(c.marker).decode() for c in chains} == first  # nothing doubled
    for job_id in first.values():  # what a Redis restart does to them
        Job.fetch(job_id, connection=conn).delete(remove_from_queue=True)
    worker().run_maintenance_tasks()
    again = {c.marker: conn.get(c.marker).decode() for c in chains}
    assert all(again[m] != first[m] for m in again)


def test_it_can_be_told_not_to_schedule(chains, settings):
    settings.WEDBACKUP_WORKER_SCHEDULES = False
    worker().run_maintenance_tasks()
    conn = django_rq.get_connection("default")
    assert all(conn.get(c.marker) is None for c in chains)


def test_it_imports_the_job_modules_before_it_forks(monkeypatch, settings, rq_queues):
    settings.WEDBACKUP_WORKER_SCHEDULES = False
    monkeypatch.delitem(sys.modules, "backups.tasks", raising=False)
    worker().work(burst=True, with_scheduler=False)  # an empty queue: it starts, finds nothing, stops
    assert "backups.tasks" in sys.modules
