import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from backups.snapshots import wedding_refresh
from providers.models import FailoverEvent, Provider, ProviderHealthCheck
from tests.factories import make_asset, make_provider, make_wedding
from tests.views import assert_login_redirect, chart, make_replica, queries_for

pytestmark = pytest.mark.django_db
LIST = "/providers/"


def test_the_list_redirects_anonymous_users(client):
    assert_login_redirect(client.get(LIST), LIST)


def test_the_list_forbids_non_staff(plain_client):
    provider = make_provider()
    assert plain_client.get(LIST).status_code == 403
    assert plain_client.get(f"/providers/{provider.pk}/").status_code == 403


def test_the_detail_redirects_anonymous_users():
    provider = make_provider()
    assert_login_redirect(Client().get(f"/providers/{provider.pk}/"), f"/providers/{provider.pk}/")


def test_the_list_shows_a_tile_per_provider_with_its_status(staff_client):
    make_provider(name="s3-east")
    down = make_provider(name="b2-west", kind="b2", region="us-west-004")
    Provider.objects.filter(pk=down.pk).update(status=Provider.Status.DOWN)
    FailoverEvent.objects.create(provider=down, trigger="automatic", reason="5 failed probes")
    html = staff_client.get(LIST).content.decode()
    assert "s3-east" in html and "b2-west" in html
    assert 'class="tile status-down"' in html
    assert "failover open" in html


def test_the_detail_aggregates_the_health_timeline(staff_client):
    provider = make_provider()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)
    for minutes, ok, latency in ((5, True, 100.0), (10, False, 300.0), (65, True, 50.0)):
        ProviderHealthCheck.objects.create(provider=provider, checked_at=hour + dt.timedelta(minutes=minutes), ok=ok,
                                           latency_ms=latency, error="" if ok else "timed out")
    ProviderHealthCheck.objects.create(provider=provider, checked_at=hour - dt.timedelta(days=3), ok=False)
    response = staff_client.get(f"/providers/{provider.pk}/")
    assert response.status_code == 200
    avg, worst, failures = chart(response, "chart-health")["data"]
    assert avg["y"] == [200.0, 50.0]
    assert worst["y"] == [300.0, 50.0]
    assert failures["y"] == [1, 0]
    assert failures["x"][0].startswith(hour.isoformat()[:13])
    assert "timed out" in response.content.decode()
    week = chart(staff_client.get(f"/providers/{provider.pk}/?range=30d"), "chart-health")
    assert sum(week["data"][2]["y"]) == 2  # the old failure is inside 30 days


def test_the_detail_shows_capacity_used_by_verified_replicas(staff_client):
    provider = make_provider(capacity_bytes=1000)
    wedding = make_wedding()
    make_replica(make_asset(wedding, size=250), provider)
    make_replica(make_asset(wedding, size=500), provider, status="failed")
    wedding_refresh(wedding)  # usage is stored per wedding at the end of each job (backups.snapshots)
    html = staff_client.get(f"/providers/{provider.pk}/").content.decode()
    assert 'data-stat="used">250\xa0bytes<' in html
    assert "(25%)" in html


def test_the_detail_lists_failover_events(staff_client):
    provider = make_provider()
    FailoverEvent.objects.create(provider=provider, trigger="manual", reason="vendor incident 42",
                                 affected_weddings=3, affected_assets=120, resolved_at=timezone.now())
    html = staff_client.get(f"/providers/{provider.pk}/").content.decode()
    assert "vendor incident 42" in html and '<td class="num">120</td>' in html


def test_an_unknown_provider_is_404(staff_client):
    assert staff_client.get("/providers/999999/").status_code == 404


def test_query_counts_do_not_grow_with_providers_checks_or_events(staff_client):
    def add(n):
        for _ in range(n):
            p = make_provider()
            make_replica(make_asset(make_wedding()), p)
            ProviderHealthCheck.objects.create(provider=p, ok=True, latency_ms=10)
            ProviderHealthCheck.objects.create(provider=first, ok=False, latency_ms=10)
            FailoverEvent.objects.create(provider=first, trigger="automatic", reason="x")

    first = make_provider()
    add(2)
    few_list, few_detail = queries_for(staff_client, LIST), queries_for(staff_client, f"/providers/{first.pk}/")
    add(20)
    assert queries_for(staff_client, LIST) == few_list
    assert queries_for(staff_client, f"/providers/{first.pk}/") == few_detail
