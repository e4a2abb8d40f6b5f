"""Table-driven tests of the pure routing rules."""

from decimal import Decimal

import pytest

from backups.routing import AssetTraits, ProviderState, Rules, WeddingTraits, route

S3_CLASSES = ("STANDARD", "INTELLIGENT_TIERING", "STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")


def provider(pid, kind, region, zone, **kw):
    classes = {"aws_s3": S3_CLASSES, "gcs": ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"),
               "azure_blob": ("Hot", "Cool", "Cold", "Archive")}.get(kind, ("",))
    prices = {"aws_s3": "0.023", "gcs": "0.020", "azure_blob": "0.018", "b2": "0.006", "wasabi": "0.0069"}
    values = dict(id=pid, name=f"{kind}-{region}", kind=kind, region=region, zone=zone, storage_classes=classes,
                  default_class=classes[0], price_per_gb_month={c: Decimal(prices.get(kind, "0.05")) for c in classes},
                  restore_hours={"GLACIER": 4, "DEEP_ARCHIVE": 48, "Archive": 15})
    values.update(kw)
    return ProviderState(**values)


FLEET = [
    provider(1, "aws_s3", "us-east-1", "US"),
    provider(2, "gcs", "us-central1", "US"),
    provider(3, "azure_blob", "eastus", "US"),
    provider(4, "b2", "us-west-004", "US"),
    provider(5, "wasabi", "us-east-1", "US"),
    provider(6, "azure_blob", "westeurope", "EU"),
    provider(7, "aws_s3", "eu-west-1", "EU"),
    provider(8, "gcs", "europe-west4", "EU"),
    provider(9, "wasabi", "eu-central-1", "EU"),
]
PHOTO = AssetTraits("photo", 3_000_000, 3000, 2000)  # 6 MP
HIGH_RES = AssetTraits("photo", 12_000_000, 6000, 4000)  # 24 MP
RAW = AssetTraits("raw_photo", 40_000_000)
DOC = AssetTraits("document", 50_000)


def names(plan):
    return [p.provider_name for p in plan.placements]


def by_kind(plan, kind):
    return [p for p in plan.placements if p.kind == kind]


@pytest.mark.parametrize("asset", [HIGH_RES, RAW])
def test_high_resolution_and_raw_photos_get_an_s3_intelligent_tiering_copy(asset):
    plan = route(WeddingTraits(zone="US"), asset, Rules(), FLEET)
    (s3,) = by_kind(plan, "aws_s3")
    assert s3.storage_class == "INTELLIGENT_TIERING"
    assert "Intelligent-Tiering" in s3.reason


def test_an_ordinary_photo_gets_no_intelligent_tiering_copy():
    plan = route(WeddingTraits(zone="US"), PHOTO, Rules(), FLEET)
    assert all(p.storage_class != "INTELLIGENT_TIERING" for p in plan.placements)


def test_weddings_needing_ml_get_a_gcs_standard_copy():
    plan = route(WeddingTraits(zone="US", requires_ml_analysis=True), PHOTO, Rules(), FLEET)
    (gcs,) = by_kind(plan, "gcs")
    assert gcs.storage_class == "STANDARD"
    assert "ML analysis" in gcs.reason


def test_eu_weddings_keep_every_copy_in_the_eu_with_azure_first():
    plan = route(WeddingTraits(zone="EU", requires_ml_analysis=True), HIGH_RES, Rules(), FLEET)
    assert plan.feasible
    assert plan.placements[0].kind == "azure_blob" and plan.placements[0].region == "westeurope"
    assert all(p.provider_id in (6, 7, 8, 9) for p in plan.placements), names(plan)


def test_cost_saver_plans_prefer_b2_or_wasabi():
    plan = route(WeddingTraits(zone="US", plan="cost-saver"), PHOTO, Rules(), FLEET)
    assert {p.kind for p in plan.placements} & {"b2", "wasabi"}
    assert "cost-saver" in plan.placements[0].reason


def test_archival_weddings_go_to_wasabi_and_cooler_but_instant_classes():
    plan = route(WeddingTraits(zone="US", archival=True), PHOTO, Rules(), FLEET)
    assert by_kind(plan, "wasabi")
    for p in plan.placements:
        assert p.storage_class not in ("GLACIER", "DEEP_ARCHIVE", "Archive", "ARCHIVE")
    assert plan.queue == "bulk"


def test_wedding_day_critical_weddings_get_an_extra_copy_and_the_critical_queue():
    normal = route(WeddingTraits(zone="US"), PHOTO, Rules(), FLEET)
    critical = route(WeddingTraits(zone="US", wedding_day_critical=True), PHOTO, Rules(), FLEET)
    assert len(critical.placements) == len(normal.placements) + 1
    assert critical.queue == "critical" and normal.queue == "default"


@pytest.mark.parametrize("wedding", [WeddingTraits(zone="US"), WeddingTraits(zone="EU", plan="cost-saver"),
                                     WeddingTraits(zone="none", requires_ml_analysis=True, archival=True)])
@pytest.mark.parametrize("asset", [PHOTO, HIGH_RES, RAW, DOC])
def test_every_plan_meets_min_copies_and_distinct_providers(wedding, asset):
    rules = Rules(min_copies=3, min_distinct_providers=3)
    plan = route(wedding, asset, rules, FLEET)
    assert plan.feasible, plan.problem
    assert len(plan.placements) >= 3
    assert len({p.kind for p in plan.placements}) >= 3
    assert len({p.provider_id for p in plan.placements}) == len(plan.placements)


def test_down_and_full_providers_are_never_chosen():
    fleet = [
        provider(1, "aws_s3", "us-east-1", "US", accepts_work=False, status="down"),
        provider(2, "gcs", "us-central1", "US", free_bytes=10),
        provider(3, "azure_blob", "eastus", "US"),
        provider(4, "b2", "us-west-004", "US"),
        provider(5, "wasabi", "us-east-1", "US"),
    ]
    plan = route(WeddingTraits(zone="US"), HIGH_RES, Rules(), fleet)
    assert plan.feasible
    assert set(names(plan)) == {"azure_blob-eastus", "b2-us-west-004", "wasabi-us-east-1"}
    assert any("S3 Intelligent-Tiering" in n for n in plan.notes)


def test_an_infeasible_plan_says_exactly_why():
    fleet = [provider(6, "azure_blob", "westeurope", "EU", accepts_work=False, status="down"),
             provider(7, "aws_s3", "eu-west-1", "EU"), provider(1, "gcs", "us-central1", "US")]
    plan = route(WeddingTraits(zone="EU"), PHOTO, Rules(), fleet)
    assert not plan.feasible
    assert plan.placements == []
    assert "azure_blob-westeurope: down" in plan.problem
    assert "gcs-us-central1: region us-central1 is outside EU residency" in plan.problem


def test_residency_is_ignored_only_when_the_policy_says_so():
    fleet = [provider(7, "aws_s3", "eu-west-1", "EU"), provider(1, "gcs", "us-central1", "US"),
             provider(2, "b2", "us-west-004", "US")]
    assert not route(WeddingTraits(zone="EU"), PHOTO, Rules(), fleet).feasible
    assert route(WeddingTraits(zone="EU"), PHOTO, Rules(enforce_residency=False), fleet).feasible


def test_cross_region_copy_lands_in_a_second_region_of_the_same_zone():
    fleet = [provider(6, "azure_blob", "westeurope", "EU"), provider(10, "azure_blob", "northeurope", "EU"),
             provider(7, "aws_s3", "westeurope", "EU")]
    plan = route(WeddingTraits(zone="EU", plan="premium"), PHOTO, Rules(cross_region_copy=True), fleet)
    assert plan.feasible
    assert {p.region for p in plan.placements} == {"westeurope", "northeurope"}


def test_providers_with_a_verified_copy_are_kept():
    plan = route(WeddingTraits(zone="US"), PHOTO, Rules(), FLEET, keep=frozenset({3, 1}))
    assert {1, 3} <= set(plan.provider_ids)


def test_one_copy_always_restores_fast():
    fleet = [provider(1, "aws_s3", "us-east-1", "US", default_class="DEEP_ARCHIVE"),
             provider(2, "azure_blob", "eastus", "US", default_class="Archive")]
    plan = route(WeddingTraits(zone="US"), PHOTO, Rules(min_copies=2), fleet)
    assert not plan.feasible
    assert "restorable within 12 h" in plan.problem
