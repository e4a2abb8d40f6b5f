"""Alerts open once, repeat at most at the interval, resolve once; e-mail and webhook carry them."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from protection.alerts import alert_raise, alert_resolve, alerts_resolve_absent
from protection.models import Alert

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhook():
    """A real HTTP server that records the JSON it is sent; ``fail`` makes it answer 500."""
    got: list[dict] = []
    state = {"fail": False}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state["fail"]:
                self.send_response(500)
            else:
                got.append(json.loads(body))
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got, state
    server.shutdown()


@pytest.fixture
def channels(settings, webhook):
    url, got, state = webhook
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.WEDBACKUP_ALERT_EMAILS = ["ops@example.com"]
    settings.WEDBACKUP_ALERT_WEBHOOK_URL = url
    settings.WEDBACKUP_ALERT_REPEAT_MINUTES = 60
    return got, state


def _raise():
    return alert_raise(key="provider_down:7", kind=Alert.Kind.PROVIDER_DOWN, subject="Provider s3-eu is down",
                       detail="3 probes failed")


def test_an_alert_opens_once_and_is_sent_on_both_channels(channels):
    got, _ = channels
    first, second = _raise(), _raise()
    assert first.pk == second.pk
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1
    assert len(mail.outbox) == 1 and "ALERT: Provider s3-eu is down" in mail.outbox[0].subject
    assert [g["event"] for g in got] == ["opened"]
    assert got[0]["kind"] == "provider_down" and "3 probes failed" in got[0]["text"]


def test_an_open_alert_repeats_only_after_the_interval(channels):
    got, _ = channels
    alert = _raise()
    Alert.objects.filter(pk=alert.pk).update(last_sent_at=timezone.now() - dt.timedelta(minutes=59))
    _raise()
    assert len(got) == 1
    Alert.objects.filter(pk=alert.pk).update(last_sent_at=timezone.now() - dt.timedelta(minutes=61))
    _raise()
    assert [g["event"] for g in got] == ["opened", "still open"]
    assert Alert.objects.get(pk=alert.pk).sent_count == 2


def test_resolving_sends_once_and_a_new_occurrence_is_a_new_alert(channels):
    got, _ = channels
    first = _raise()
    assert alert_resolve(key="provider_down:7").resolved_at is not None
    assert alert_resolve(key="provider_down:7") is None
    assert [g["event"] for g in got] == ["opened", "resolved"]
    assert Alert.objects.get(pk=first.pk).resolution_sent
    again = _raise()
    assert again.pk != first.pk and [g["event"] for g in got][-1] == "opened"


def test_a_failed_send_is_retried_by_the_next_raise(channels, settings):
    got, state = channels
    settings.WEDBACKUP_ALERT_EMAILS = []
    state["fail"] = True
    alert = _raise()
    assert Alert.objects.get(pk=alert.pk).last_sent_at is None and not got
    state["fail"] = False
    _raise()
    assert [g["event"] for g in got] == ["opened"]


def test_a_sweep_resolves_what_is_no_longer_true(channels):
    for pk in (1, 2, 3):
        alert_raise(key=f"provider_down:{pk}", kind=Alert.Kind.PROVIDER_DOWN, subject=f"p{pk} down")
    resolved = alerts_resolve_absent(kind=Alert.Kind.PROVIDER_DOWN, keys={"provider_down:2"})
    assert sorted(a.key for a in resolved) == ["provider_down:1", "provider_down:3"]
    assert list(Alert.objects.filter(resolved_at__isnull=True).values_list("key", flat=True)) == ["provider_down:2"]
