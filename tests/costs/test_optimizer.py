"""The pure optimiser on hand-built fleets: lifecycle by age and kind, provider mix, and the policy checks
that keep a proposal from ever being offered when it would break a rule."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from backups.routing import Rules
from costs.catalog import load_catalog
from costs.fleet import PINNED_BAND, Cohort, CopyGroup, Fleet, ProviderInfo, restore_hours, storage_monthly
from costs.optimizer import MAX_PAYBACK_MONTHS, gap_after, optimise

MB = 1024 * 1024
CATALOG = load_catalog()
S3 = ("STANDARD", "INTELLIGENT_TIERING", "STANDARD_IA", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
GCS = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
AZURE = ("Hot", "Cool", "Cold", "Archive")


def providers(*extra: ProviderInfo) -> dict[int, ProviderInfo]:
    base = [ProviderInfo(1, "aws", "aws_s3", "us-east-1", "US", S3, can_change_class=True),
            ProviderInfo(2, "gcs", "gcs", "us-east1", "US", GCS, can_change_class=True),
            ProviderInfo(3, "azure", "azure_blob", "eastus", "US", AZURE, can_change_class=True)]
    return {p.id: p for p in (*base, *extra)}


def cohort(age_days: int, kind: str = "photo", band: int = 2, assets: int = 100, size: int = 500 * MB,
           copies: tuple[tuple[int, str], ...] = ((1, "STANDARD"), (2, "STANDARD"), (3, "Hot")), **kw) -> Cohort:
    groups = tuple(CopyGroup(pid, cls, assets, size, assets, class_age_days=400) for pid, cls in copies)
    return Cohort(wedding_id=kw.pop("wedding_id", 1), zone=kw.pop("zone", "US"), plan="standard", age_days=age_days,
                  asset_kind=kind, band=band, assets=assets, bytes=size, copies=groups, **kw)


def fleet(*cohorts: Cohort, extra: tuple[ProviderInfo, ...] = ()) -> Fleet:
    return Fleet((4096, 131072), providers(*extra), list(cohorts))


def run(f: Fleet, rules: Rules | None = None, **kw):
    return optimise(f, CATALOG, {"standard": rules or Rules()}, **kw)


def targets(proposals) -> dict[int, str]:
    return {c["provider"]: c["to_class"] for p in proposals for c in p.changes if c["action"] == "change_class"}


def test_a_recent_wedding_stays_in_the_hot_classes():
    assert run(fleet(cohort(10))) == []


def test_after_thirty_days_copies_go_infrequent_access_with_an_honest_payback():
    [p] = run(fleet(cohort(60)))
    assert p.kind == "lifecycle"
    assert targets([p]) == {1: "STANDARD_IA", 2: "NEARLINE", 3: "Cool"}
    assert p.new_monthly < p.current_monthly and p.one_off_cost > 0
    assert p.payback_months == p.one_off_cost / (p.current_monthly - p.new_monthly) <= MAX_PAYBACK_MONTHS
    expected_new = sum(storage_monthly(CATALOG, fleet(), providers()[pid], cls, 2, 100, 500 * MB)
                       for pid, cls in targets([p]).items())
    assert p.new_monthly == expected_new


def test_after_a_year_photos_are_archived_but_one_copy_stays_instantly_readable():
    f = fleet(cohort(500))
    [p] = run(f)
    chosen = targets([p])
    assert chosen[1] in ("GLACIER_IR", "GLACIER") and chosen[3] in ("Cold", "Archive")
    assert any(restore_hours(CATALOG, f.providers[pid], cls) == 0 for pid, cls in chosen.items())


def test_old_videos_go_to_deep_archive_and_documents_never_past_infrequent_access():
    videos = targets(run(fleet(cohort(200, kind="video"))))
    assert videos[1] == "DEEP_ARCHIVE"
    documents = targets(run(fleet(cohort(900, kind="document"))))
    assert set(documents.values()) <= {"STANDARD_IA", "NEARLINE", "Cool"}


def test_the_last_instant_copy_is_kept_even_when_the_policy_allows_slow_restores():
    f = Fleet((4096, 131072), {k: v for k, v in providers().items() if k != 2},
              [cohort(900, kind="video", copies=((1, "STANDARD"), (3, "Hot")))])
    rules = Rules(min_copies=2, max_restore_hours=48)
    chosen = targets(run(f, rules))
    assert any(restore_hours(CATALOG, f.providers[pid], cls) == 0 for pid, cls in chosen.items())
    assert "DEEP_ARCHIVE" in chosen.values() or "Archive" in chosen.values()


@pytest.mark.parametrize("band", [0, 1, PINNED_BAND])
def test_small_objects_and_manifests_are_never_archived(band):
    assert targets(run(fleet(cohort(900, band=band, size=100 * 50_000)))) == {}


def test_copies_move_to_a_cheaper_provider_in_the_same_zone_only():
    b2_us = ProviderInfo(4, "b2-us", "b2", "us-west-004", "US", ("",))
    b2_eu = ProviderInfo(5, "b2-eu", "b2", "eu-central-003", "EU", ("",))
    proposals = run(fleet(cohort(10), extra=(b2_us, b2_eu)))
    [mix] = [p for p in proposals if p.kind == "provider_mix"]
    [move] = mix.changes
    assert move["to_provider"] == 4 and move["provider"] in (1, 2, 3)
    assert mix.one_off_cost > 0 and mix.payback_months <= MAX_PAYBACK_MONTHS
    eu = run(fleet(cohort(10, zone="EU", copies=((1, "STANDARD"), (2, "STANDARD"))), extra=(b2_us,)))
    assert eu == []  # the EU wedding's copies are (wrongly) in US regions: below policy, left to repair


def test_a_move_that_would_leave_one_vendor_is_never_offered():
    b2_a = ProviderInfo(4, "b2-a", "b2", "us-west-004", "US", ("",))
    b2_b = ProviderInfo(5, "b2-b", "b2", "us-east-005", "US", ("",))
    f = Fleet((4096, 131072), {1: providers()[1], 4: b2_a, 5: b2_b}, [cohort(10, copies=((1, "STANDARD"), (4, "")))])
    # Moving the S3 copy to the second B2 account is cheaper and pays back fast, but both copies would be B2.
    assert run(f, Rules(min_copies=2)) == []
    f.providers[5] = replace(b2_b, kind="wasabi", classes=("STANDARD",))
    [mix] = run(f, Rules(min_copies=2))
    assert mix.changes[0]["to_provider"] == 5


def test_nothing_is_offered_for_a_cohort_already_below_policy_or_on_a_down_provider():
    short = cohort(400, copies=((1, "STANDARD"), (2, "STANDARD")))
    assert run(fleet(short)) == []
    partial = replace(cohort(400), copies=(CopyGroup(1, "STANDARD", 100, 500 * MB, 99), *cohort(400).copies[1:]))
    assert run(fleet(partial), Rules(min_copies=3)) == []
    down = fleet(cohort(400))
    down.providers[1] = replace(down.providers[1], available=False)
    assert 1 not in targets(run(down))


def test_every_offered_plan_passes_protection_gap():
    f = fleet(*(cohort(age, kind=kind, wedding_id=i) for i, (age, kind) in enumerate(
        [(5, "photo"), (45, "raw_photo"), (200, "video"), (400, "photo"), (800, "video"), (900, "document")])),
              extra=(ProviderInfo(4, "b2-us", "b2", "us-west-004", "US", ("",)),))
    proposals = run(f)
    assert {p.kind for p in proposals} == {"lifecycle", "provider_mix"}
    for c in f.cohorts:
        moved = {ch["provider"]: ch for p in proposals if p.wedding_id == c.wedding_id for ch in p.changes}
        after = [replace(g, provider_id=moved[g.provider_id].get("to_provider", g.provider_id),
                         storage_class=moved[g.provider_id]["to_class"]) if g.provider_id in moved else g
                 for g in c.copies]
        assert gap_after(c, after, f, CATALOG, Rules()) == ""


def test_a_flat_plan_provider_costs_nothing_until_its_cap():
    dropbox = ProviderInfo(7, "dropbox", "dropbox", "", "none", ("",), flat=True, capacity_bytes=10**12)
    [mix] = [p for p in run(fleet(cohort(10, zone="none"), extra=(dropbox,))) if p.kind == "provider_mix"]
    assert mix.changes[0]["to_provider"] == 7 and mix.new_monthly == 0
    two = fleet(cohort(10, zone="none", wedding_id=1), cohort(10, zone="none", wedding_id=2), extra=(
        replace(dropbox, capacity_bytes=600 * MB),))
    assert len([p for p in run(two) if p.kind == "provider_mix"]) == 1  # room for one 500 MB copy, not two
    full = replace(dropbox, capacity_bytes=100 * MB)
    assert [p for p in run(fleet(cohort(10, zone="none"), extra=(full,))) if p.kind == "provider_mix"] == []


def test_compression_only_for_compressible_kinds_with_a_measured_ratio():
    f = fleet(cohort(10, kind="raw_photo", wedding_id=1), cohort(10, kind="photo", wedding_id=2))
    proposals = run(f, ratios={(1, "raw_photo"): 0.6, (2, "photo"): 0.5})
    [comp] = [p for p in proposals if p.kind == "compression"]
    assert comp.wedding_id == 1 and comp.changes[0]["ratio"] == 0.6
    assert comp.new_monthly == pytest.approx(comp.current_monthly * Decimal("0.6"), rel=Decimal("0.001"))
    assert [p for p in run(f, ratios={(1, "raw_photo"): 0.95}) if p.kind == "compression"] == []


def test_duplicates_within_a_wedding_are_priced_as_savings():
    proposals = run(fleet(cohort(10)), duplicates={1: (5, 50 * MB)})
    [dedup] = [p for p in proposals if p.kind == "dedup"]
    assert dedup.monthly_saving == dedup.current_monthly * Decimal(50 * MB) / Decimal(500 * MB)


def test_copies_under_object_lock_are_never_moved_nor_reclassed():
    locked = cohort(500)
    locked = replace(locked, copies=tuple(replace(g, locked=(g.provider_id == 1)) for g in locked.copies))
    proposals = run(fleet(locked))
    assert proposals and 1 not in targets(proposals)  # the others still go cooler
    assert all(c["provider"] != 1 for p in proposals for c in p.changes)
