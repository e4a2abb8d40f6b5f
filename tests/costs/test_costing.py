"""The cost model: database aggregates into cohorts, priced with the catalog; access recorded per wedding."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest

from backups.models import Replica
from costs.catalog import default_catalog
from costs.costing import access_record, costs_summary, duplicates, fleet_state, thresholds
from costs.pricing import StorageUsage, monthly_storage_cost
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 6, 1)
SIZES = [1_000, 3_000, 50_000, 100_000, 2_000_000, 5_000_000]


@pytest.fixture
def stored():
    """One wedding, six photos (two under 4 KB, two under 128 KiB, two large) on S3 Standard-IA and Azure Hot."""
    wedding = make_wedding(date=dt.date(2025, 1, 10))
    s3 = make_provider(name="s3", kind="aws_s3", region="us-east-1")
    azure = make_provider(name="azure", kind="azure_blob", region="eastus")
    for i, size in enumerate(SIZES):
        asset = make_asset(wedding, relative_path=f"p/{i}.jpg", size=size, sha256=hashlib.sha256(b"%d" % i).hexdigest())
        for provider, cls in ((s3, "STANDARD_IA"), (azure, "Hot")):
            Replica.objects.create(asset=asset, provider=provider, storage_class=cls, size=size, sha256=asset.sha256,
                                   status=Replica.Status.VERIFIED, object_key=f"k/{i}")
    return wedding, s3, azure


def test_cohorts_come_from_aggregates_split_at_the_small_object_thresholds(stored, django_assert_max_num_queries):
    wedding, s3, azure = stored
    assert thresholds(default_catalog()) == (4096, 131072)
    with django_assert_max_num_queries(8):
        fleet = fleet_state(today=TODAY)
    bands = {c.band: c for c in fleet.cohorts}
    assert {b: (c.assets, c.bytes) for b, c in bands.items()} == {0: (2, 4_000), 1: (2, 150_000), 2: (2, 7_000_000)}
    large = bands[2]
    assert large.age_days == (TODAY - wedding.date).days and large.zone == "US"
    assert {(g.provider_id, g.storage_class, g.objects, g.bytes, g.current) for g in large.copies} == {
        (s3.pk, "STANDARD_IA", 2, 7_000_000, 2), (azure.pk, "Hot", 2, 7_000_000, 2)}


def test_a_replica_of_old_content_is_not_counted_as_a_current_copy(stored):
    Replica.objects.filter(size=5_000_000, provider__name="s3").update(sha256="0" * 64)
    [large] = [c for c in fleet_state(today=TODAY).cohorts if c.band == 2]
    assert {g.storage_class: g.current for g in large.copies} == {"STANDARD_IA": 1, "Hot": 2}


def test_the_query_count_does_not_grow_with_the_number_of_assets(stored, django_assert_max_num_queries):
    wedding, s3, _ = stored
    for i in range(40):
        a = make_asset(wedding, relative_path=f"more/{i}.jpg", size=200_000 + i)
        Replica.objects.create(asset=a, provider=s3, storage_class="STANDARD", size=a.size, sha256=a.sha256,
                               status="verified", object_key=f"m/{i}")
    with django_assert_max_num_queries(8):
        fleet_state(today=TODAY)


def test_the_monthly_cost_applies_the_per_object_minimum_to_small_objects(stored):
    summary = costs_summary()
    rows = {(r["provider"], r["storage_class"]): r["monthly"] for r in summary["by_provider_class"]}
    catalog = default_catalog()
    ia = catalog.class_price("aws_s3", "us-east-1", "STANDARD_IA")
    hot = catalog.class_price("azure_blob", "eastus", "Hot")
    assert rows[("s3", "STANDARD_IA")] == monthly_storage_cost(ia, StorageUsage.from_sizes(SIZES, 131072))
    assert rows[("azure", "Hot")] == monthly_storage_cost(hot, StorageUsage.from_sizes(SIZES, 0))
    # Four of six objects are billed as 128 KiB: more than their real bytes at the same rate.
    billed = sum(SIZES[4:]) + 4 * ia.min_object_bytes
    assert rows[("s3", "STANDARD_IA")] == Decimal(billed) / ia.gb_bytes * ia.storage_gb_month
    assert summary["current_monthly"] == sum(rows.values())
    assert set(summary) >= {"current_monthly", "optimised_monthly", "savings_by_kind", "by_provider_class"}
    assert summary["optimised_monthly"] <= summary["current_monthly"]


def test_access_is_recorded_and_read_per_wedding(stored):
    wedding, _, _ = stored
    record = access_record(wedding=wedding, kind="download", bytes=3_000_000, asset_kind="photo")
    assert record.pk and record.asset_kind == "photo"
    cohorts = fleet_state(today=TODAY).cohorts
    assert all(c.accessed_days_ago == 0 for c in cohorts)
    # Spread over the 90-day window and over the wedding's bytes: the large band gets most of it.
    large = next(c for c in cohorts if c.band == 2)
    assert large.access_bytes_month == int(Decimal(3_000_000) * Decimal(7_000_000 / 7_154_000) / 3)


def test_duplicates_are_counted_per_wedding_from_the_content_hash(stored):
    wedding, _, _ = stored
    other = make_wedding()
    data = b"same bytes"
    for w, path in ((wedding, "a.jpg"), (wedding, "b/a copy.jpg"), (wedding, "c.jpg"), (other, "a.jpg")):
        make_asset(w, relative_path=path, data=data)
    assert duplicates() == {wedding.pk: (2, 2 * len(data))}
