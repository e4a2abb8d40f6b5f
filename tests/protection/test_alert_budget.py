"""A cost snapshot above the monthly budget: alerted after the real cost model runs, repeated at the snapshots' pace
once the interval has passed, resolved by a snapshot within budget; no budget, no alert."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backups.models import Replica
from costs.snapshots import cost_snapshot_take
from tests.factories import make_asset, make_provider, make_wedding
from tests.protection.alerting import open_alert, repeat_due, sent

pytestmark = pytest.mark.django_db
KEY = "cost_budget"


@pytest.fixture
def stored_terabyte():
    """One terabyte verified on S3 Standard: a bill of some 20 USD a month."""
    provider = make_provider(kind="aws_s3", region="us-east-1", default_storage_class="STANDARD")
    asset = make_asset(make_wedding(), size=10**12)
    return Replica.objects.create(asset=asset, provider=provider, object_key=f"weddings/x/{asset.pk}", size=asset.size,
                                  sha256=asset.sha256, status=Replica.Status.VERIFIED, storage_class="STANDARD")


def test_a_snapshot_above_the_budget_alerts_repeats_and_resolves(channels, settings, stored_terabyte):
    got, _ = channels
    settings.WEDBACKUP_COST_BUDGET_MONTHLY = 5
    snapshot = cost_snapshot_take()
    assert snapshot.current_monthly > 5
    alert = open_alert(KEY)
    assert sent(got, KEY) == ["opened"]
    assert f"Monthly cost {snapshot.current_monthly:.2f} USD is above the budget of 5.00 USD" == alert.subject
    assert f"{snapshot.current_monthly - 5:.2f} USD over" in alert.detail
    cost_snapshot_take()
    assert sent(got, KEY) == ["opened"]
    repeat_due(KEY)
    cost_snapshot_take()
    assert sent(got, KEY) == ["opened", "still open"]

    settings.WEDBACKUP_COST_BUDGET_MONTHLY = float(snapshot.current_monthly + Decimal(1))
    cost_snapshot_take()
    assert sent(got, KEY) == ["opened", "still open", "resolved"] and open_alert(KEY) is None


def test_no_budget_no_alert_and_switching_it_off_resolves(channels, settings, stored_terabyte):
    got, _ = channels
    settings.WEDBACKUP_COST_BUDGET_MONTHLY = 0
    cost_snapshot_take()
    assert open_alert(KEY) is None
    settings.WEDBACKUP_COST_BUDGET_MONTHLY = 1
    cost_snapshot_take()
    assert open_alert(KEY) is not None
    settings.WEDBACKUP_COST_BUDGET_MONTHLY = 0
    cost_snapshot_take()
    assert sent(got, KEY) == ["opened", "resolved"]
