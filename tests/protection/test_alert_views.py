"""The alerts page (open and recently resolved alerts), the nav's count and the overview's: who sees what."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from protection.alerts import alert_raise, alert_resolve
from protection.models import Alert
from tests.views import assert_login_redirect

pytestmark = pytest.mark.django_db
URL = "/protection/alerts/"


@pytest.fixture
def viewer(client, django_user_model):
    user = django_user_model.objects.create_user("viewer1", "v@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="viewer"))
    client.force_login(user)
    return client


@pytest.fixture
def alerts(settings):
    settings.WEDBACKUP_ALERT_EMAILS, settings.WEDBACKUP_ALERT_WEBHOOK_URL = [], ""
    down = alert_raise(key="provider_down:1", kind=Alert.Kind.PROVIDER_DOWN, subject="Provider nas-1 is down",
                       detail="Watched folder nas-1 has been down since 09:00.")
    stuck = alert_raise(key="job_stuck:9", kind=Alert.Kind.JOB_STUCK, subject="backup of Ana & Ben is stuck (job #9)")
    alert_raise(key="job_failed:3:backup", kind=Alert.Kind.JOB_FAILED, subject="backup of Kim & Lee failed")
    alert_resolve(key="job_failed:3:backup")
    alert_raise(key="cost_budget", kind=Alert.Kind.COST_BUDGET, subject="Monthly cost 90.00 USD is above the budget")
    alert_resolve(key="cost_budget")
    Alert.objects.filter(key="cost_budget").update(resolved_at=timezone.now() - dt.timedelta(days=8))
    Alert.objects.filter(pk=down.pk).update(sent_count=3)
    return down, stuck


def test_anonymous_visitors_are_sent_to_log_in(client):
    assert reverse("protection:alerts") == URL
    assert_login_redirect(client.get(URL), URL)


def test_staff_without_the_permission_get_403(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("bare", "b@example.com", "pw", is_staff=True))
    assert client.get(URL).status_code == 403


def test_non_staff_get_403(plain_client):
    assert plain_client.get(URL).status_code == 403


def test_a_viewer_sees_open_alerts_and_the_last_weeks_resolved_ones(viewer, alerts):
    html = viewer.get(URL).content.decode()
    open_part, resolved_part = html.split("Resolved in the last 7 days")
    assert 'data-stat="alerts-open">2<' in open_part
    assert 'data-alert="provider_down:1"' in open_part and "Provider nas-1 is down" in open_part
    assert "Provider down" in open_part and "down since 09:00." in open_part
    assert "<td>3</td>" in open_part  # times sent
    assert 'data-alert="job_stuck:9"' in open_part and "Ana &amp; Ben is stuck" in open_part
    assert 'data-resolved-alert="job_failed:3:backup"' in resolved_part and "Kim &amp; Lee" in resolved_part
    assert "cost_budget" not in html  # resolved eight days ago


def test_nothing_open_says_so(viewer):
    html = viewer.get(URL).content.decode()
    assert 'data-empty="open"' in html and 'data-empty="resolved"' in html


def test_the_nav_and_the_overview_count_open_alerts(viewer, alerts):
    for url in ("/", URL, "/weddings/"):
        assert re.search(r'data-nav="alerts"[^>]*>Alerts \(2\)</a>', viewer.get(url).content.decode()), url
    assert 'data-stat="alerts-open">2<' in viewer.get("/").content.decode()
    alert_resolve(key="job_stuck:9")
    assert re.search(r'data-nav="alerts"[^>]*>Alerts \(1\)</a>', viewer.get("/weddings/").content.decode())


def test_users_without_the_permission_see_no_alerts_link(client, django_user_model, alerts):
    user = django_user_model.objects.create_user("watcher", "w@example.com", "pw", is_staff=True)
    user.user_permissions.add(*Group.objects.get(name="viewer").permissions.exclude(codename="view_alert"))
    client.force_login(user)
    html = client.get("/").content.decode()
    assert 'data-nav="alerts"' not in html and reverse("protection:alerts") not in html
