"""Stored cost figures (costs.snapshots): the cost model's answer kept, read back exactly, one per past day."""

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from django.utils import timezone

from backups.models import Replica
from costs.costing import costs_summary
from costs.models import CostSnapshot
from costs.snapshots import cost_history, cost_latest, cost_snapshot_take, snapshots_prune
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored():
    wedding = make_wedding(date=dt.date(2023, 1, 10))  # old enough for the optimiser to propose a colder class
    s3 = make_provider(name="s3", kind="aws_s3", region="us-east-1")
    azure = make_provider(name="azure", kind="azure_blob", region="eastus")
    b2 = make_provider(name="b2", kind="b2", region="us-west-004")
    for i, size in enumerate([2_000_000, 5_000_000, 50_000_000]):
        asset = make_asset(wedding, relative_path=f"p/{i}.jpg", size=size, sha256=hashlib.sha256(b"%d" % i).hexdigest())
        for provider, cls in ((s3, "STANDARD"), (azure, "Hot"), (b2, "")):
            Replica.objects.create(asset=asset, provider=provider, storage_class=cls, size=size, sha256=asset.sha256,
                                   status=Replica.Status.VERIFIED, object_key=f"k/{i}")
    return wedding


def test_a_snapshot_holds_the_cost_models_answer_exactly(stored):
    assert cost_latest() is None
    live = costs_summary()
    snapshot = cost_snapshot_take()
    latest = cost_latest()
    cents = Decimal("0.00000001")  # totals are stored to eight places
    assert latest["current_monthly"] == live["current_monthly"].quantize(cents) > 0
    assert latest["optimised_monthly"] == live["optimised_monthly"].quantize(cents)
    assert latest["savings_by_kind"] == live["savings_by_kind"]
    assert latest["by_provider_class"] == live["by_provider_class"]
    assert latest["saving"] == latest["current_monthly"] - latest["optimised_monthly"]
    assert latest["taken_at"] == snapshot.taken_at and snapshot.seconds >= 0
    assert all(isinstance(v, Decimal) for v in latest["savings_by_kind"].values())


def snap(at: dt.datetime, current: str = "10") -> CostSnapshot:
    return CostSnapshot.objects.create(current_monthly=Decimal(current), optimised_monthly=Decimal("5"), taken_at=at)


def test_past_days_keep_only_their_last_snapshot():
    today = dt.date(2026, 11, 20)
    midnight = timezone.make_aware(dt.datetime.combine(today, dt.time()))
    day_before = [snap(midnight - dt.timedelta(hours=h)) for h in (20, 10, 1)]
    two_days_before = [snap(midnight - dt.timedelta(days=1, hours=h)) for h in (5, 2)]
    today_snaps = [snap(midnight + dt.timedelta(hours=h)) for h in (1, 2)]
    assert snapshots_prune(today=today) == 3
    kept = set(CostSnapshot.objects.values_list("pk", flat=True))
    assert kept == {day_before[-1].pk, two_days_before[-1].pk, *(s.pk for s in today_snaps)}
    assert snapshots_prune(today=today) == 0


def test_the_history_is_oldest_first_and_bounded_in_days():
    now = timezone.now()
    old = snap(now - dt.timedelta(days=200))
    recent = [snap(now - dt.timedelta(days=d), current=str(d)) for d in (30, 3, 0)]
    history = cost_history(days=90)
    assert [s.pk for s in history] == [s.pk for s in recent]
    assert old.pk not in [s.pk for s in history]
