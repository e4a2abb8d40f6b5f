"""/metrics: Prometheus text a real parser reads, from the stored figures; a token or an allowed address only."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backups.snapshots import fleet_health_refresh
from costs.snapshots import cost_snapshot_take
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db


def scrape(client: Client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def test_the_figures_come_from_the_stored_snapshots(rq_queues, settings):
    settings.WEDBACKUP_METRICS_ALLOW = ["127.0.0.1"]
    make_provider(name="nas-a", kind="watched_folder", bucket="/tmp/nas-a")  # noqa: S108 - never written
    wedding = make_wedding()
    make_asset(wedding, size=1000, seen_complete_at=timezone.now() - dt.timedelta(minutes=10))
    make_asset(wedding, size=500, seen_complete_at=timezone.now() - dt.timedelta(minutes=20),
               protected_at=timezone.now() - dt.timedelta(minutes=19))
    fleet_health_refresh()
    cost_snapshot_take()
    families = scrape(Client(REMOTE_ADDR="127.0.0.1"))
    value = {name: [s.value for s in fam.samples] for name, fam in families.items()}
    assert value["wedbackup_assets_at_risk"] == [2] and value["wedbackup_bytes_at_risk"] == [1500]
    assert value["wedbackup_weddings_at_risk"] == [1]
    assert {s.labels["queue"] for s in families["wedbackup_queue_jobs"].samples} == {"critical", "default", "bulk",
                                                                                        "health"}
    up = {s.labels["provider"]: s.value for s in families["wedbackup_provider_up"].samples}
    assert up == {"nas-a": 1}
    assert {s.labels["plan"] for s in families["wedbackup_cost_monthly"].samples} == {"now", "optimised"}
    assert 600 <= value["wedbackup_rpo_oldest_unprotected_seconds"][0] < 700
    assert value["wedbackup_rpo_p95_seconds"] == [pytest.approx(60, abs=1)]


def test_scrapes_need_the_token_or_an_allowed_address(settings):
    settings.WEDBACKUP_METRICS_ALLOW = ["10.0.0.9"]
    settings.WEDBACKUP_METRICS_TOKEN = "t0ken-for-prometheus"
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    scrape(Client(REMOTE_ADDR="127.0.0.1"), HTTP_AUTHORIZATION="Bearer t0ken-for-prometheus")
    scrape(Client(REMOTE_ADDR="10.0.0.9"))
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics", HTTP_AUTHORIZATION="Bearer tøken").status_code == 403


def test_by_default_no_address_is_trusted(settings):
    settings.WEDBACKUP_METRICS_TOKEN = ""
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403  # a proxy's own address, too
