"""A provider down and back up: alerted at once through the real breaker (failures recorded, a probe that succeeds),
repeated by the sweep, resolved when the breaker closes; a staff drain opens none but does not end an outage."""

from __future__ import annotations

import pytest

from backups.failover import provider_mark_down, provider_mark_up
from protection.checks import alerts_check
from providers.breaker import breaker_record
from providers.health import health_check_all
from providers.models import Provider
from tests.protection.alerting import mails_about, open_alert, repeat_due, sent

pytestmark = pytest.mark.django_db


def test_a_provider_down_alerts_at_once_repeats_and_resolves_when_it_is_back(channels, breakers, folder_provider,
                                                                             settings):
    got, _ = channels
    provider = folder_provider(name="nas-1")
    key = f"provider_down:{provider.pk}"
    for _ in range(3):
        breaker_record(provider.pk, False, "TransientError: timeout")
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DOWN
    assert sent(got, key) == ["opened"]  # from the breaker's signal, before any sweep
    assert "Provider nas-1 is down" in open_alert(key).subject and len(mails_about("nas-1")) == 1
    alerts_check()
    assert sent(got, key) == ["opened"]
    repeat_due(key)
    assert alerts_check()["provider_down"] == 1
    assert sent(got, key) == ["opened", "still open"]

    settings.WEDBACKUP_BREAKER_COOLDOWN = 0
    health_check_all()  # the trial probe succeeds: the breaker closes
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE
    assert sent(got, key) == ["opened", "still open", "resolved"]
    assert open_alert(key) is None


def test_the_sweep_opens_and_resolves_what_no_signal_told(channels, folder_provider):
    got, _ = channels
    provider = folder_provider()
    key = f"provider_down:{provider.pk}"
    Provider.objects.filter(pk=provider.pk).update(status=Provider.Status.DOWN)  # e.g. a crashed worker's leftover
    alerts_check()
    assert sent(got, key) == ["opened"]
    Provider.objects.filter(pk=provider.pk).update(enabled=False)  # switched off: no longer an outage to report
    alerts_check()
    assert sent(got, key) == ["opened", "resolved"]


def test_a_staff_drain_opens_no_alert_but_does_not_end_an_outage(channels, breakers, folder_provider):
    got, _ = channels
    drained, failing = folder_provider(), folder_provider()
    provider_mark_down(provider=drained, by="cli:alice", reason="maintenance")
    alerts_check()
    assert open_alert(f"provider_down:{drained.pk}") is None

    for _ in range(3):
        breaker_record(failing.pk, False, "TransientError: 503")
    failing.refresh_from_db()
    provider_mark_down(provider=failing, by="cli:alice")  # staff drain it while it is down
    alerts_check()
    assert sent(got, f"provider_down:{failing.pk}") == ["opened"]
    provider_mark_up(provider=failing, by="cli:alice")
    alerts_check()
    assert sent(got, f"provider_down:{failing.pk}") == ["opened", "resolved"]
