"""Alert messages that could not be delivered are retried by the next alert check until delivered once, and a big
outage is told in one digest instead of a message per alert. Real webhook server, real SMTP failures."""

from __future__ import annotations

import socket

import pytest
from django.core import mail

from protection.alerts import alert_raise, alert_resolve
from protection.checks import alerts_check
from protection.models import Alert
from providers.models import Provider
from tests.factories import make_provider
from tests.protection.alerting import repeat_due, sent

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_down(settings):
    """Mail goes to a real SMTP connection that is refused (nothing listens on the port)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2


def _drill_alert() -> Alert:  # raised once by a drill, never again by a sweep
    return alert_raise(key="drill_failed:9", kind=Alert.Kind.DRILL_FAILED, subject="Drill of nas failed")


def test_a_resolution_that_failed_is_sent_by_the_next_check_and_only_once(channels, smtp_down):
    got, state = channels
    alert = _drill_alert()
    assert sent(got, "drill_failed:9") == ["opened"]  # the webhook got it; the mail server did not
    state["fail"] = True  # the webhook answers 500 from now on
    alert_resolve(key="drill_failed:9")
    assert not Alert.objects.get(pk=alert.pk).resolution_sent
    assert alerts_check()["retried"] == 1  # tried again, failed again
    assert not Alert.objects.get(pk=alert.pk).resolution_sent and sent(got, "drill_failed:9") == ["opened"]
    state["fail"] = False
    alerts_check()
    assert sent(got, "drill_failed:9") == ["opened", "resolved"]
    assert Alert.objects.get(pk=alert.pk).resolution_sent
    assert alerts_check()["retried"] == 0
    assert sent(got, "drill_failed:9") == ["opened", "resolved"]


def test_an_opening_message_that_failed_is_sent_by_the_next_check_once(channels, smtp_down):
    got, state = channels
    state["fail"] = True
    alert = _drill_alert()
    assert Alert.objects.get(pk=alert.pk).sent_count == 0
    alerts_check()
    assert not got and Alert.objects.get(pk=alert.pk).last_sent_at is None  # unsent: still owed
    state["fail"] = False
    alerts_check()
    alerts_check()
    assert sent(got, "drill_failed:9") == ["opened"]
    assert Alert.objects.get(pk=alert.pk).sent_count == 1


def _outage(n: int) -> list[Provider]:
    return [make_provider(name=f"p{i}", status=Provider.Status.DOWN) for i in range(n)]


def test_a_big_outage_is_one_digest_for_the_opening_the_repeats_and_the_resolution(channels, settings):
    got, state = channels
    settings.WEDBACKUP_ALERT_DIGEST_OVER = 5
    providers = _outage(7)
    # The first check cannot deliver: nothing counts as sent, and the next check tries again.
    state["fail"], settings.WEDBACKUP_ALERT_EMAILS = True, []
    alerts_check()
    assert not got and not Alert.objects.filter(sent_count__gt=0).exists()
    state["fail"], settings.WEDBACKUP_ALERT_EMAILS = False, ["ops@example.com"]
    mail.outbox.clear()
    assert alerts_check()["provider_down"] == 7
    assert [g["event"] for g in got] == ["digest"] and got[0]["count"] == 7
    assert sorted(a["key"] for a in got[0]["alerts"]) == sorted(f"provider_down:{p.pk}" for p in providers)
    assert {a["event"] for a in got[0]["alerts"]} == {"opened"}
    assert len(mail.outbox) == 1 and "DIGEST: 7 alerts (7 opened)" in mail.outbox[0].subject
    assert all(line in mail.outbox[0].body for line in (f"Provider p{i} is down" for i in range(7)))
    assert set(Alert.objects.values_list("sent_count", flat=True)) == {1}

    alerts_check()  # nothing due: nothing sent
    assert len(got) == 1
    for p in providers:
        repeat_due(f"provider_down:{p.pk}")
    alerts_check()
    assert [g["event"] for g in got] == ["digest", "digest"]
    assert {a["event"] for a in got[1]["alerts"]} == {"still open"} and got[1]["count"] == 7

    Provider.objects.update(status=Provider.Status.ACTIVE)
    alerts_check()
    assert [g["event"] for g in got][-1] == "digest" and {a["event"] for a in got[-1]["alerts"]} == {"resolved"}
    assert Alert.objects.filter(resolution_sent=True).count() == 7 and len(got) == 3


def test_a_small_outage_is_told_alert_by_alert(channels, settings):
    got, _ = channels
    settings.WEDBACKUP_ALERT_DIGEST_OVER = 5
    providers = _outage(5)
    alerts_check()
    assert sorted(g["key"] for g in got) == sorted(f"provider_down:{p.pk}" for p in providers)
    assert {g["event"] for g in got} == {"opened"}
