"""Tiering with the providers' own lifecycle rules (costs.tiering, pure: no database, no servers)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from backups.layout import ROOT
from backups.routing import Rules
from costs.baselines import fleet_monthly, saving_from
from costs.catalog import load_catalog
from costs.fleet import PINNED_BAND, Cohort, CopyGroup, Fleet, ProviderInfo
from costs.optimizer import gap_after, optimise
from costs.pricing import transition_cost
from costs.tiering import (
    CLASS_CHANGE_REQUESTS,
    RULE_ID,
    WEDDINGS_PREFIX,
    fleet_under_rules,
    provider_rules,
    tiering_plan,
    tiering_saving,
    worker_requests,
)
from providers.backends.base_lifecycle import LifecycleRule

MB = 1024 * 1024
CATALOG = load_catalog()
S3 = ("STANDARD", "INTELLIGENT_TIERING", "STANDARD_IA", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
GCS = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
AZURE = ("Hot", "Cool", "Cold", "Archive")
PROVIDERS = {p.id: p for p in (
    ProviderInfo(1, "aws", "aws_s3", "us-east-1", "US", S3, can_change_class=True, lifecycle_rules=True),
    ProviderInfo(2, "gcs", "gcs", "us-east1", "US", GCS, can_change_class=True, lifecycle_rules=True),
    ProviderInfo(3, "azure", "azure_blob", "eastus", "US", AZURE, can_change_class=True))}
NAIVE = ((1, "STANDARD"), (2, "STANDARD"), (3, "Hot"))
RULES = {"standard": Rules()}
S3_RULE = LifecycleRule(id=RULE_ID, prefix="weddings/", transitions=((30, "STANDARD_IA"), (365, "GLACIER_IR")),
                        min_size=131072)
GCS_RULE = LifecycleRule(id=RULE_ID, prefix="weddings/", transitions=((30, "NEARLINE"), (365, "ARCHIVE")))


def cohort(age_days: int, *, band: int = 2, kind: str = "photo", size: int = 500 * MB, wedding_id: int = 1,
           copies=NAIVE, **kw) -> Cohort:
    groups = tuple(CopyGroup(pid, cls, 100, size, 100) for pid, cls in copies)
    return Cohort(wedding_id=wedding_id, zone="US", plan="standard", age_days=age_days, asset_kind=kind,
                  band=band, assets=100, bytes=size, copies=groups, **kw)


def fleet(*cohorts: Cohort, providers=PROVIDERS) -> Fleet:
    return Fleet((4096, 131072), providers, list(cohorts))


def classes(f: Fleet) -> list[tuple[str, ...]]:
    return [tuple(g.storage_class for g in c.copies) for c in f.cohorts]


def test_rules_take_the_cheapest_instantly_readable_class_of_each_tier_and_only_where_declared():
    assert f"{ROOT}/" == WEDDINGS_PREFIX
    assert provider_rules(PROVIDERS[1], CATALOG) == (S3_RULE,)  # not Glacier or Deep Archive: they need a restore
    assert provider_rules(PROVIDERS[2], CATALOG) == (GCS_RULE,)  # GCS Archive is online; GCS cannot filter by size
    assert provider_rules(PROVIDERS[3], CATALOG) == ()  # Azure declares no lifecycle rules
    assert provider_rules(replace(PROVIDERS[1], lifecycle_rules=False), CATALOG) == ()
    wasabi = ProviderInfo(4, "wasabi", "wasabi", "us-east-1", "US", ("",), lifecycle_rules=True)
    assert provider_rules(wasabi, CATALOG) == ()  # one class: nothing to tier


def test_under_the_rules_copies_move_by_age_never_warmer_and_small_objects_and_manifests_stay():
    rules = {1: (S3_RULE,), 2: (GCS_RULE,)}
    deep = cohort(400, kind="video", wedding_id=2, copies=((1, "DEEP_ARCHIVE"), (2, "STANDARD"), (3, "Hot")))
    tiered = fleet_under_rules(fleet(cohort(10), cohort(45), cohort(400), deep, cohort(400, band=1, size=MB),
                                     cohort(400, band=PINNED_BAND)), rules)
    assert classes(tiered) == [
        ("STANDARD", "STANDARD", "Hot"), ("STANDARD_IA", "NEARLINE", "Hot"), ("GLACIER_IR", "ARCHIVE", "Hot"),
        ("DEEP_ARCHIVE", "ARCHIVE", "Hot"),  # a copy the optimiser put colder stays there
        ("STANDARD", "ARCHIVE", "Hot"),  # under 128 KiB: S3 leaves them, GCS has no per-object minimum
        ("STANDARD", "STANDARD", "Hot")]
    assert [g.class_age_days for g in tiered.cohorts[2].copies] == [35, 35, 0]


def test_the_plan_installs_rules_prices_the_providers_transition_requests_and_keeps_per_object_work():
    f = fleet(cohort(60, wedding_id=1), cohort(200, wedding_id=2), cohort(500, kind="video", wedding_id=3))
    plan = tiering_plan(f, CATALOG, RULES)
    s3, gcs = plan.rules
    assert (s3.provider_id, s3.rules, gcs.provider_id, gcs.rules) == (1, (S3_RULE,), 2, (GCS_RULE,))
    # Every photo and video copy on S3 and GCS is transitioned by the provider, one request per object, priced
    # at the class moved into, per 1,000.
    assert s3.objects == gcs.objects == 300
    ia, gir = CATALOG.class_price("aws_s3", "us-east-1", "STANDARD_IA"), CATALOG.class_price(
        "aws_s3", "us-east-1", "GLACIER_IR")
    assert s3.transition_cost == transition_cost(ia, 200) + transition_cost(gir, 100) == Decimal("0.004")
    assert s3.current_monthly == fleet_monthly(fleet=f, catalog=CATALOG) > s3.new_monthly == gcs.current_monthly
    assert gcs.new_monthly == fleet_monthly(fleet=plan.fleet, catalog=CATALOG)
    # Left per object: Azure's class changes (no rules there) and Deep Archive for the old video on S3.
    changes = sorted((p.wedding_id, c["provider"], c["from_class"], c["to_class"])
                     for p in plan.proposals for c in p.changes)
    assert changes == [(1, 3, "Hot", "Cool"), (2, 3, "Hot", "Cool"), (3, 1, "GLACIER_IR", "DEEP_ARCHIVE"),
                       (3, 3, "Hot", "Archive")]
    assert all(not gap_after(c, list(c.copies), plan.fleet, CATALOG, Rules()) for c in plan.fleet.cohorts)
    # Our workers: 9 class-change groups of 100 objects without rules, 4 with them.
    without = worker_requests(optimise(f, CATALOG, RULES), PROVIDERS)
    assert without == 100 * (3 * CLASS_CHANGE_REQUESTS["aws_s3"] + 3 * CLASS_CHANGE_REQUESTS["gcs"] + 3 * 3)
    assert worker_requests(plan.proposals, PROVIDERS) == 100 * (CLASS_CHANGE_REQUESTS["aws_s3"] + 3 * 3)


def test_no_rule_where_it_would_not_pay_or_nothing_is_old_enough():
    assert tiering_plan(fleet(cohort(10), cohort(20, wedding_id=2)), CATALOG, RULES).rules == ()
    # Tiny objects: the transition requests cost more than a year of the storage they save.
    tiny = tiering_plan(fleet(cohort(400, band=0, size=100 * 1024)), CATALOG, RULES)
    assert tiny.rules == ()


def test_the_archive_step_is_dropped_when_it_would_cost_more_than_it_saves():
    # A wedding read a lot (0.8 of its bytes a month) on S3 alone: Glacier IR's retrieval fee (0.03/GB) outweighs
    # its storage saving, Standard-IA's (0.01/GB) does not.
    f = fleet(cohort(400, copies=((1, "STANDARD"),), access_bytes_month=400 * MB, accessed_days_ago=40))
    [s3] = tiering_plan(f, CATALOG, RULES).rules
    assert s3.rules[0].transitions == ((30, "STANDARD_IA"),) and s3.new_monthly < s3.current_monthly


def test_a_provider_that_is_down_gets_no_rules_now():
    down = {**PROVIDERS, 1: replace(PROVIDERS[1], available=False)}
    plan = tiering_plan(fleet(cohort(400), providers=down), CATALOG, RULES)
    assert [r.provider_id for r in plan.rules] == [2]


def test_the_saving_with_rules_counts_the_providers_transition_requests():
    f = fleet(cohort(60, wedding_id=1), cohort(200, wedding_id=2), cohort(500, kind="video", wedding_id=3))
    plan = tiering_plan(f, CATALOG, RULES)
    with_rules = tiering_saving(fleet=f, catalog=CATALOG, rules_by_plan=RULES, baseline="naive")
    per_object = saving_from(fleet=f, catalog=CATALOG, rules_by_plan=RULES, baseline="naive")
    assert with_rules.baseline_monthly == per_object.baseline_monthly == fleet_monthly(fleet=f, catalog=CATALOG)
    assert with_rules.one_off == sum((r.transition_cost for r in plan.rules), Decimal(0)) + sum(
        (p.one_off_cost for p in plan.proposals), Decimal(0))
    assert with_rules.optimised_monthly == fleet_monthly(fleet=plan.fleet, catalog=CATALOG) - sum(
        (p.monthly_saving for p in plan.proposals), Decimal(0))
    # Here both ways end in the same classes; the rules pay one more transition per old video copy on S3 (into
    # Glacier IR by the rule, then Deep Archive by our worker): 100 x 0.02 / 1,000.
    assert with_rules.optimised_monthly == per_object.optimised_monthly
    assert with_rules.one_off - per_object.one_off == Decimal("0.002")
