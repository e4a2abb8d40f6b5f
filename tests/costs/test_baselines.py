"""The two baselines the optimiser's saving is measured against, on hand-built fleets (pure: no database)."""

from __future__ import annotations

from decimal import Decimal

from backups.routing import Rules
from costs.baselines import (
    AMORTISE_MONTHS,
    Saving,
    fleet_monthly,
    lifecycle_baseline,
    lifecycle_class,
    saving_from,
    savings_against_baselines,
)
from costs.catalog import load_catalog
from costs.fleet import PINNED_BAND, Cohort, CopyGroup, Fleet, ProviderInfo, storage_monthly
from costs.optimizer import gap_after, optimise

MB = 1024 * 1024
CATALOG = load_catalog()
S3 = ("STANDARD", "INTELLIGENT_TIERING", "STANDARD_IA", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
GCS = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
AZURE = ("Hot", "Cool", "Cold", "Archive")
PROVIDERS = {p.id: p for p in (ProviderInfo(1, "aws", "aws_s3", "us-east-1", "US", S3, can_change_class=True),
                               ProviderInfo(2, "gcs", "gcs", "us-east1", "US", GCS, can_change_class=True),
                               ProviderInfo(3, "azure", "azure_blob", "eastus", "US", AZURE, can_change_class=True))}
NAIVE = ((1, "STANDARD"), (2, "STANDARD"), (3, "Hot"))
RULES = {"standard": Rules()}


def cohort(age_days: int, *, band: int = 2, kind: str = "photo", size: int = 500 * MB, **kw) -> Cohort:
    groups = tuple(CopyGroup(pid, cls, 100, size, 100) for pid, cls in NAIVE)
    return Cohort(wedding_id=kw.pop("wedding_id", 1), zone="US", plan="standard", age_days=age_days, asset_kind=kind,
                  band=band, assets=100, bytes=size, copies=groups, **kw)


def fleet(*cohorts: Cohort) -> Fleet:
    return Fleet((4096, 131072), PROVIDERS, list(cohorts))


def classes(f: Fleet) -> list[tuple[str, ...]]:
    return [tuple(g.storage_class for g in c.copies) for c in f.cohorts]


def test_the_admin_rules_follow_object_age_and_wait_out_each_minimum_duration():
    ages = (10, 30, 89, 90, 180, 364, 365, 1000)
    tiered = lifecycle_baseline(fleet=fleet(*(cohort(a, wedding_id=a) for a in ages)))
    assert classes(tiered) == [
        ("STANDARD", "STANDARD", "Hot"), ("STANDARD_IA", "NEARLINE", "Cool"), ("STANDARD_IA", "NEARLINE", "Cool"),
        ("GLACIER_IR", "COLDLINE", "Cold"), ("DEEP_ARCHIVE", "COLDLINE", "Archive"),
        ("DEEP_ARCHIVE", "COLDLINE", "Archive"), ("DEEP_ARCHIVE", "ARCHIVE", "Archive"),
        ("DEEP_ARCHIVE", "ARCHIVE", "Archive")]
    # Days spent in the class so far: what the optimiser's early-deletion charges count from.
    assert [g.class_age_days for g in tiered.cohorts[3].copies] == [0, 0, 0]
    assert [g.class_age_days for g in tiered.cohorts[5].copies] == [184, 274, 184]


def test_s3_keeps_objects_under_128_kib_in_their_class_and_manifests_and_locked_copies_stay():
    small = cohort(400, band=1, size=100 * 1024)  # band 1: objects under 128 KiB
    manifest = cohort(400, band=PINNED_BAND, wedding_id=2)
    locked = cohort(400, wedding_id=3)
    locked = Cohort(**{**locked.__dict__, "copies": tuple(CopyGroup(g.provider_id, g.storage_class, 100, g.bytes, 100,
                                                                    locked=g.provider_id == 2)
                                                          for g in locked.copies)})
    assert classes(lifecycle_baseline(fleet=fleet(small, manifest, locked))) == [
        ("STANDARD", "ARCHIVE", "Archive"), ("STANDARD", "STANDARD", "Hot"), ("DEEP_ARCHIVE", "STANDARD", "Archive")]
    assert lifecycle_class(kind="b2", classes=("",), storage_class="", age_days=900, largest_bytes=None) == ("", None)


def test_the_admin_setup_keeps_an_instant_copy_and_meets_the_policy():
    tiered = lifecycle_baseline(fleet=fleet(*(cohort(a, wedding_id=a) for a in (45, 200, 900))))
    assert [gap_after(c, list(c.copies), tiered, CATALOG, Rules()) for c in tiered.cohorts] == ["", "", ""]


def test_fleet_monthly_is_storage_plus_the_reads_served_by_the_fastest_copy():
    quiet, looked_at = cohort(400), cohort(400, wedding_id=2, access_bytes_month=2048 * MB, accessed_days_ago=5)
    storage = sum(storage_monthly(CATALOG, fleet(), PROVIDERS[pid], cls, 2, 100, 500 * MB) for pid, cls in NAIVE)
    assert fleet_monthly(fleet=fleet(quiet), catalog=CATALOG) == storage
    with_reads = fleet_monthly(fleet=fleet(looked_at), catalog=CATALOG)
    # 2 GiB a month from a Standard copy: no retrieval fee, GETs and internet egress only.
    assert storage + Decimal("0.17") < with_reads < storage + Decimal("0.26")


def test_a_saving_counts_the_one_off_costs_spread_over_a_year():
    f = fleet(cohort(60))
    [p] = optimise(f, CATALOG, RULES)
    s = saving_from(fleet=f, catalog=CATALOG, rules_by_plan=RULES, baseline="naive")
    assert s.baseline_monthly == p.current_monthly
    assert s.optimised_monthly == p.new_monthly and s.one_off == p.one_off_cost > 0
    assert s.amortised_monthly == p.new_monthly + p.one_off_cost / AMORTISE_MONTHS
    assert s.percent == 100 * (p.current_monthly - s.amortised_monthly) / p.current_monthly
    assert Saving("empty", Decimal(0), Decimal(0), Decimal(0)).percent == 0


def test_against_the_admin_rules_there_is_less_to_save_than_against_default_classes():
    f = fleet(cohort(60, wedding_id=1), cohort(200, wedding_id=2), cohort(500, kind="video", wedding_id=3))
    naive, tiered = savings_against_baselines(fleet=f, catalog=CATALOG, rules_by_plan=RULES)
    assert (naive.baseline, tiered.baseline) == ("naive default classes", "age-based lifecycle rules")
    assert naive.baseline_monthly == fleet_monthly(fleet=f, catalog=CATALOG)
    assert tiered.baseline_monthly == fleet_monthly(fleet=lifecycle_baseline(fleet=f), catalog=CATALOG)
    assert tiered.baseline_monthly < naive.baseline_monthly / 2
    assert naive.percent > tiered.percent
