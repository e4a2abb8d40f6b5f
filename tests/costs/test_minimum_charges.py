"""A minimum charge (Wasabi bills at least 1 TB a month) is its own explained line wherever a cost is shown."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from backups.models import Replica
from costs.catalog import default_catalog
from costs.costing import costs_summary
from costs.snapshots import cost_snapshot_take
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db
SIZE = 2_200_000


@pytest.fixture
def small_on_wasabi():
    wedding = make_wedding(country="DE")
    wasabi = make_provider(name="wasabi-eu-central", kind="wasabi", region="eu-central-1")
    asset = make_asset(wedding, relative_path="p/1.jpg", size=SIZE, sha256=hashlib.sha256(b"1").hexdigest())
    Replica.objects.create(asset=asset, provider=wasabi, storage_class="", size=SIZE, sha256=asset.sha256,
                           status=Replica.Status.VERIFIED, object_key="k/1")
    return wasabi


def test_the_minimum_charge_is_a_row_of_its_own_with_its_explanation(small_on_wasabi):
    summary = costs_summary()
    rows = {r["storage_class"]: r for r in summary["by_provider_class"] if r["provider"] == "wasabi-eu-central"}
    price = default_catalog().class_price("wasabi", "eu-central-1", "")
    stored = Decimal(SIZE) / price.gb_bytes * price.storage_gb_month
    minimum = (Decimal(10**12 - SIZE) / price.gb_bytes) * price.storage_gb_month
    assert rows[""]["monthly"] == stored and "note" not in rows[""]
    assert rows["minimum charge"]["monthly"] == minimum
    assert rows["minimum charge"]["note"] == (
        "includes Wasabi's 1 TB minimum: wasabi-eu-central stores 2.1 MB but is billed for at least 1 TB a month, "
        f"so {minimum:.2f} USD/month of the total is the minimum charge")
    assert summary["current_monthly"] == stored + minimum
    assert f"{stored + minimum:.2f}" == "6.99"


def test_a_provider_above_its_minimum_has_no_minimum_line(small_on_wasabi):
    Replica.objects.filter(provider=small_on_wasabi).update(size=2 * 10**12)
    rows = [r for r in costs_summary()["by_provider_class"] if r["provider"] == "wasabi-eu-central"]
    assert [r["storage_class"] for r in rows] == [""]


def test_the_costs_page_and_the_overview_explain_the_minimum(small_on_wasabi, staff_client):
    cost_snapshot_take()
    for url in ("/costs/", "/"):
        html = staff_client.get(url).content.decode()
        assert "data-minimum-charge>includes Wasabi&#x27;s 1 TB minimum: wasabi-eu-central stores 2.1 MB" in html, url


def test_a_flat_plan_is_its_seats_explained(small_on_wasabi):
    dropbox = make_provider(name="dropbox-team", kind="dropbox", region="us-east-1")
    Replica.objects.filter(provider=small_on_wasabi).update(provider=dropbox)
    plan = default_catalog().provider("dropbox").plan()
    [row] = [r for r in costs_summary()["by_provider_class"] if r["storage_class"] == "plan seats"]
    assert row["monthly"] == plan.min_seats * plan.seat_month
    assert row["note"].startswith(f"dropbox-team: {plan.provider} {plan.name} is billed per seat, storage included: "
                                  f"{plan.min_seats} seats (minimum {plan.min_seats})")
