"""The health monitor on real watched-folder providers and real Redis: probes, breaker, status, signals."""

import contextlib
import shutil
import threading
import time
from pathlib import Path

import pytest

from providers import signals
from providers.backends.watched_folder import WatchedFolderBackend
from providers.breaker import CLOSED, HALF_OPEN, OPEN, breaker_store
from providers.health import health_check_all, health_tick, provider_probe
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


# -- what the layers above hear (providers.signals) -------------------------------------------------------
@contextlib.contextmanager
def heard(signal):
    """Collect what ``signal`` sends while the block runs."""
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    signal.connect(receiver, weak=False)
    try:
        yield calls
    finally:
        signal.disconnect(receiver)


def test_an_opening_breaker_is_announced_once_with_the_reason(folder_provider, breakers):
    provider = folder_provider()
    vanish(provider)
    with heard(signals.breaker_opened) as opened, heard(signals.provider_status_changed) as changed:
        for _ in range(4):
            provider_probe(provider=provider)
    assert [c["provider"].pk for c in opened] == [provider.pk]
    assert "circuit opened" in opened[0]["reason"]
    assert [c["status"] for c in changed] == [Provider.Status.DEGRADED, Provider.Status.DOWN]


def test_a_closing_breaker_is_announced(folder_provider, breakers, settings):
    provider = folder_provider()
    root = Path(provider.bucket)
    vanish(provider)
    for _ in range(3):
        provider_probe(provider=provider)
    root.mkdir()
    with heard(signals.breaker_closed) as closed:
        provider_probe(provider=provider, force_trial=True)
    assert [c["provider"].pk for c in closed] == [provider.pk]
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE


def test_a_health_round_reports_which_breakers_are_open_and_which_closed(folder_provider, breakers):
    up, down = folder_provider(), folder_provider()
    vanish(down)
    for _ in range(3):
        provider_probe(provider=down)
    with heard(signals.health_reconciled) as rounds:
        health_check_all()
    assert len(rounds) == 1
    assert rounds[0]["open_ids"] == {down.pk} and rounds[0]["closed_ids"] == {up.pk}


def test_providers_alone_start_no_failover(folder_provider, breakers, monkeypatch):
    """With the backups layer's receivers gone, an outage changes the row and nothing else: providers knows
    nothing of failovers, weddings or jobs."""
    monkeypatch.setattr(signals.breaker_opened, "receivers", [])
    monkeypatch.setattr(signals.health_reconciled, "receivers", [])
    monkeypatch.setattr(signals.breaker_opened, "sender_receivers_cache", {})
    monkeypatch.setattr(signals.health_reconciled, "sender_receivers_cache", {})
    provider = folder_provider()
    vanish(provider)
    for _ in range(3):
        provider_probe(provider=provider)
    health_check_all()
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DOWN
    assert not FailoverEvent.objects.exists()


def test_the_health_job_probes_every_enabled_provider(folder_provider, breakers):
    folder_provider(), folder_provider(), folder_provider(enabled=False)
    assert health_tick() == 2


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
