import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from backups.models import BackupJob, BackupPolicy, Replica, Wedding
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db


def test_residency_is_derived_from_the_country():
    assert make_wedding(country="fr").residency_zone == "EU"
    assert make_wedding(country="US").residency_zone == "US"
    assert make_wedding(country="JP").residency_zone == "none"


def test_an_explicit_residency_overrides_the_country():
    assert make_wedding(country="FR", residency_zone="none").residency_zone == "none"


def test_slugs_are_unique_for_the_same_couple_and_date():
    a = make_wedding(couple="Zoë & Åsa", date=dt.date(2026, 5, 1))
    b = make_wedding(couple="Zoë & Åsa", date=dt.date(2026, 5, 1))
    assert a.slug == "zoe-asa-2026-05-01"
    assert b.slug == "zoe-asa-2026-05-01-2"


@pytest.mark.parametrize(
    ("offset_days", "critical"),
    [(-8, False), (-7, True), (0, True), (2, True), (3, False)],
)
def test_wedding_day_critical_window_runs_from_7_days_before_to_2_after(offset_days, critical):
    wedding = Wedding(couple="x", date=dt.date(2026, 6, 20), country="US")
    today = wedding.date + dt.timedelta(days=offset_days)
    assert wedding.is_wedding_day_critical(today) is critical


def test_asset_paths_are_unique_per_wedding():
    wedding = make_wedding()
    make_asset(wedding, relative_path="a.jpg")
    make_asset(make_wedding(), relative_path="a.jpg")  # another wedding may reuse it
    with pytest.raises(IntegrityError), transaction.atomic():
        make_asset(wedding, relative_path="a.jpg")


def test_a_replica_is_unique_per_asset_and_provider():
    asset = make_asset(make_wedding())
    provider = make_provider()
    Replica.objects.create(asset=asset, provider=provider, object_key="k")
    with pytest.raises(IntegrityError), transaction.atomic():
        Replica.objects.create(asset=asset, provider=provider, object_key="k2")


def test_the_data_migration_creates_one_default_policy():
    policy = BackupPolicy.objects.get(is_default=True)
    assert (policy.min_copies, policy.min_distinct_providers) == (3, 2)
    with pytest.raises(IntegrityError), transaction.atomic():
        BackupPolicy.objects.create(name="second", is_default=True)


def test_a_policy_cannot_ask_for_more_distinct_providers_than_copies():
    with pytest.raises(IntegrityError), transaction.atomic():
        BackupPolicy.objects.create(name="odd", min_copies=2, min_distinct_providers=3)


def test_plan_overrides_apply_on_top_of_the_policy():
    policy = BackupPolicy.default()
    policy.plan_overrides = {"cost-saver": {"min_copies": 2}}
    assert policy.for_plan("cost-saver")["min_copies"] == 2
    assert policy.for_plan("standard")["min_copies"] == policy.min_copies
    assert policy.for_plan("premium")["cross_region_copy"] is True
    assert policy.for_plan("standard")["cross_region_copy"] is False


def test_job_progress_follows_bytes_done():
    job = BackupJob(kind="backup", bytes_planned=400, bytes_done=100)
    assert job.progress_percent == 25
