"""Alerts open once, repeat at most at the interval, resolve once; e-mail and webhook carry them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from protection.alerts import alert_raise, alert_resolve, alerts_resolve_absent
from protection.models import Alert

pytestmark = pytest.mark.django_db


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
