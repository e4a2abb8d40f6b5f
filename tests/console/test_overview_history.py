"""The overview draws the stored cost snapshots over time once there are two."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from costs.models import CostSnapshot
from tests.views import chart

pytestmark = pytest.mark.django_db


def snapshot(days_ago: int, monthly: str) -> CostSnapshot:
    return CostSnapshot.objects.create(
        current_monthly=Decimal(monthly), optimised_monthly=Decimal(monthly) / 2,
        by_provider_class=[{"provider": "s3", "storage_class": "STANDARD", "monthly": monthly}],
        taken_at=timezone.now() - dt.timedelta(days=days_ago))


def test_the_overview_charts_the_cost_history(staff_client):
    snapshot(14, "8")
    assert "chart-history" not in staff_client.get("/").content.decode()  # one point is not a history
    snapshot(7, "10")
    traces = {t["name"]: t["y"] for t in chart(staff_client.get("/"), "chart-history")["data"]}
    assert traces["s3 · STANDARD"] == [8.0, 10.0] and traces["optimised total"] == [4.0, 5.0]
