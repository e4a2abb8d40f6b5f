"""The health monitor on real watched-folder providers and real Redis: probes, breaker, status, schedule."""

import contextlib
import dataclasses
import shutil
import threading
import time
import uuid
from pathlib import Path

import django_rq
import pytest
from rq import SimpleWorker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from providers import health
from providers.backends.watched_folder import WatchedFolderBackend
from providers.breaker import CLOSED, HALF_OPEN, OPEN, breaker_store
from providers.health import health_check_all, health_schedule, provider_probe
from providers.models import FailoverEvent, Provider, ProviderHealthCheck

pytestmark = pytest.mark.django_db


def vanish(provider: Provider) -> None:
    shutil.rmtree(provider.bucket)


def test_a_healthy_folder_probes_ok(folder_provider, breakers):
    provider = folder_provider()
    check = provider_probe(provider=provider)
    assert check.ok, check.error
    assert check.source == ProviderHealthCheck.Source.PROBE
    assert check.latency_ms is not None and check.latency_ms >= 0
    assert ProviderHealthCheck.objects.filter(provider=provider, ok=True).count() == 1
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE
    assert breakers.get(provider.pk).state == CLOSED
    assert list(Path(provider.bucket).iterdir()) == []  # the canary cleaned up after itself


def test_a_vanished_folder_fails_and_after_three_probes_is_down(folder_provider, breakers):
    provider = folder_provider()
    vanish(provider)
    check = provider_probe(provider=provider)
    assert not check.ok
    assert "does not exist" in check.error
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DEGRADED  # recent failures
    assert provider.accepts_work

    provider_probe(provider=provider)
    assert breakers.get(provider.pk).state == CLOSED
    provider_probe(provider=provider)
    assert breakers.get(provider.pk).state == OPEN
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DOWN
    assert not provider.accepts_work
    event = FailoverEvent.objects.get(provider=provider)
    assert event.trigger == FailoverEvent.Trigger.AUTOMATIC
    assert "does not exist" in event.reason
    assert event.resolved_at is None


def test_an_open_breaker_is_not_probed_during_its_cool_down(folder_provider, breakers):
    provider = folder_provider()
    vanish(provider)
    for _ in range(3):
        health_check_all()
    assert breakers.get(provider.pk).state == OPEN
    assert health_check_all() == []
    assert ProviderHealthCheck.objects.filter(provider=provider).count() == 3


def test_the_half_open_trial_brings_a_recovered_folder_back(folder_provider, breakers, settings):
    provider = folder_provider()
    healthy = folder_provider()
    vanish(provider)
    for _ in range(3):
        health_check_all()
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DOWN

    settings.WEDBACKUP_BREAKER_COOLDOWN = 0
    Path(provider.bucket).mkdir()  # remounted
    checks = health_check_all()
    assert {c.provider_id: c.ok for c in checks} == {provider.pk: True, healthy.pk: True}
    assert breakers.get(provider.pk).state == CLOSED
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE
    event = FailoverEvent.objects.get(provider=provider)
    assert event.resolved_at is not None and event.actual_seconds is not None


def test_a_failed_trial_keeps_it_down(folder_provider, breakers, settings):
    provider = folder_provider()
    vanish(provider)
    for _ in range(3):
        provider_probe(provider=provider)
    settings.WEDBACKUP_BREAKER_COOLDOWN = 0
    opened_at = breakers.get(provider.pk).opened_at
    [check] = health_check_all()
    assert not check.ok
    state = breakers.get(provider.pk)
    assert state.state == OPEN and state.opened_at > opened_at
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DOWN
    assert FailoverEvent.objects.filter(provider=provider).count() == 1  # still the same outage


def test_a_drained_provider_stays_draining(folder_provider, breakers):
    provider = folder_provider()
    Provider.objects.filter(pk=provider.pk).update(status=Provider.Status.DRAINING)
    assert provider_probe(provider=provider).ok
    health_check_all()
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DRAINING
    vanish(provider)
    for _ in range(3):
        health_check_all()
    assert breakers.get(provider.pk).state == OPEN
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DRAINING


def test_disabled_providers_are_not_probed(folder_provider, breakers):
    folder_provider(enabled=False)
    assert health_check_all() == []


def test_an_upload_failure_feeds_the_same_breaker(folder_provider, breakers):
    from providers.breaker import breaker_record

    provider = folder_provider()
    for _ in range(3):
        breaker_record(provider.pk, False, "TransientError: connection reset")
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DOWN
    assert FailoverEvent.objects.filter(provider=provider, resolved_at=None).count() == 1


@pytest.fixture
def hanging_probe(monkeypatch):
    """Make watched-folder probes hang the way a provider that accepts a connection and never answers does."""
    release = threading.Event()
    original = WatchedFolderBackend.probe

    def hang(self):
        release.wait(30)
        return original(self)

    monkeypatch.setattr(WatchedFolderBackend, "probe", hang)
    yield
    release.set()


def test_a_hung_provider_cannot_block_the_monitor(folder_provider, breakers, settings, hanging_probe):
    settings.WEDBACKUP_PROBE_TIMEOUT = 0.5
    providers = [folder_provider() for _ in range(3)]
    started = time.monotonic()
    checks = health_check_all()
    elapsed = time.monotonic() - started
    assert elapsed < 2.0  # concurrent, and bounded by the timeout: not 3 x 30 s
    assert len(checks) == len(providers)
    assert all(not c.ok and "timed out after 0.5s" in c.error for c in checks)


def test_a_trial_in_progress_is_not_duplicated(folder_provider, breakers, settings):
    provider = folder_provider()
    vanish(provider)
    for _ in range(3):
        provider_probe(provider=provider)
    settings.WEDBACKUP_BREAKER_COOLDOWN = 0
    assert breaker_store().try_trial(provider.pk)  # another worker is running the trial
    assert breakers.get(provider.pk).state == HALF_OPEN
    assert health_check_all() == []  # so the monitor does not start a second one


# -- the schedule -------------------------------------------------------------------------------------
def drop_job(queue, job_id: str) -> None:
    with contextlib.suppress(NoSuchJobError):
        Job.fetch(job_id, connection=queue.connection).delete(remove_from_queue=True)


@pytest.fixture
def tick_marker(monkeypatch, settings):
    marker = f"test:health:next-tick:{uuid.uuid4().hex}"
    monkeypatch.setattr(health, "HEALTH_CHAIN", dataclasses.replace(health.HEALTH_CHAIN, marker=marker))
    settings.WEDBACKUP_HEALTH_INTERVAL = 30
    queue = django_rq.get_queue("health")
    before = set(queue.get_job_ids()) | set(ScheduledJobRegistry(queue=queue).get_job_ids())
    yield queue
    for job_id in (set(queue.get_job_ids()) | set(ScheduledJobRegistry(queue=queue).get_job_ids())) - before:
        if job_id.startswith("wedbackup-health-"):
            drop_job(queue, job_id)
    queue.connection.delete(marker)


def test_scheduling_is_idempotent(tick_marker):
    queue = tick_marker
    first = health_schedule()
    assert health_schedule() == first
    assert health_schedule() == first
    assert [j for j in queue.get_job_ids() if j == first] == [first]


def test_a_broken_chain_is_started_again(tick_marker):
    queue = tick_marker
    first = health_schedule()
    drop_job(queue, first)  # e.g. someone flushed the queue
    second = health_schedule()
    assert second != first
    assert second in queue.get_job_ids()


@pytest.mark.django_db(transaction=True)
def test_a_tick_probes_and_schedules_the_next_one(tick_marker, folder_provider, breakers):
    queue = tick_marker
    provider = folder_provider()
    first = health_schedule()
    worker = django_rq.get_worker(queue.name, worker_class=SimpleWorker)
    worker.work(burst=True, max_jobs=1, with_scheduler=False)
    assert Job.fetch(first, connection=queue.connection).return_value() == 1
    assert ProviderHealthCheck.objects.filter(provider=provider, ok=True).count() == 1
    scheduled = ScheduledJobRegistry(queue=queue)
    following = queue.connection.get(health.HEALTH_CHAIN.marker).decode()
    assert following != first
    assert following in scheduled.get_job_ids()
    when = scheduled.get_scheduled_time(following).timestamp()
    assert 25 < when - time.time() <= 30
    assert health_schedule() == following  # already scheduled: nothing added


@pytest.mark.django_db(transaction=True)
def test_a_stray_duplicate_tick_ends_its_chain(tick_marker, folder_provider, breakers):
    queue = tick_marker
    folder_provider()
    owner = health_schedule()
    stray = queue.enqueue(health.HEALTH_CHAIN.func, job_id=f"wedbackup-health-stray-{uuid.uuid4().hex}")
    queue.remove(owner)  # run only the stray one
    scheduled_before = set(ScheduledJobRegistry(queue=queue).get_job_ids())
    worker = django_rq.get_worker(queue.name, worker_class=SimpleWorker)
    worker.work(burst=True, max_jobs=1, with_scheduler=False)
    assert Job.fetch(stray.id, connection=queue.connection).return_value() == 0
    assert queue.connection.get(health.HEALTH_CHAIN.marker).decode() == owner
    assert set(ScheduledJobRegistry(queue=queue).get_job_ids()) == scheduled_before  # no second chain


def test_upload_failures_are_kept_for_the_console_but_successes_are_not(folder_provider, breakers):
    from providers.breaker import breaker_record

    provider = folder_provider()
    breaker_record(provider.pk, True, source=ProviderHealthCheck.Source.UPLOAD)
    breaker_record(provider.pk, False, "TransientError: 500", source=ProviderHealthCheck.Source.UPLOAD)
    breaker_record(provider.pk, False, "PermanentError: bucket gone", source=ProviderHealthCheck.Source.RESTORE)
    rows = list(ProviderHealthCheck.objects.filter(provider=provider).order_by("pk").values_list("source", "ok",
                                                                                                 "error"))
    assert rows == [("upload", False, "TransientError: 500"), ("restore", False, "PermanentError: bucket gone")]


def test_work_is_allowed_only_while_the_breaker_is_closed(folder_provider, breakers, settings):
    from providers.breaker import breaker_allows, breaker_record

    provider = folder_provider()
    assert breaker_allows(provider.pk)
    for _ in range(3):
        breaker_record(provider.pk, False, "TransientError: timeout")
    assert not breaker_allows(provider.pk)
    settings.WEDBACKUP_BREAKER_COOLDOWN = 0
    assert breaker_store().try_trial(provider.pk)
    assert not breaker_allows(provider.pk)  # half-open: only the trial goes
    breaker_record(provider.pk, True, trial=True)
    assert breaker_allows(provider.pk)
