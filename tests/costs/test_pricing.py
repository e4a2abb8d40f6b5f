"""Price arithmetic. Expected values are computed here from the catalog's figures (never copied from the
implementation); a few hand-worked examples spell the arithmetic out against the list prices.
"""

from decimal import Decimal

import pytest

from costs.catalog import load_catalog
from costs.pricing import (
    DAYS_PER_MONTH,
    Infeasible,
    StorageUsage,
    account_minimum_cost,
    billed_gb,
    capacity_bytes,
    class_change_cost,
    early_deletion_cost,
    egress_cost,
    flat_marginal_cost,
    monitoring_cost,
    monthly_flat_cost,
    monthly_request_cost,
    monthly_storage_cost,
    one_off_move_cost,
    payback_months,
    retrieval_cost,
    round_money,
    seats_needed,
    transition_cost,
)

KiB, MiB, GiB = 1024, 1024**2, 1024**3
GB, TB = 10**9, 10**12
SMALL = 128 * KiB  # S3's minimum billable size and Intelligent-Tiering's monitoring minimum


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def s3(catalog):
    return lambda cls, region="us-east-1": catalog.class_price("aws_s3", region, cls)


def gib(n_bytes):
    return Decimal(n_bytes) / GiB


def test_minimum_billable_size_makes_small_objects_dearer_in_standard_ia(s3):
    usage = StorageUsage.from_sizes([10 * KiB] * 1000, SMALL)
    assert (usage.small_objects, usage.small_bytes) == (1000, 10 * KiB * 1000)
    standard, ia = s3("STANDARD"), s3("STANDARD_IA")
    expected_ia = gib(1000 * SMALL) * ia.storage_gb_month
    expected_standard = gib(1000 * 10 * KiB) * standard.storage_gb_month
    assert monthly_storage_cost(ia, usage) == expected_ia
    assert monthly_storage_cost(standard, usage) == expected_standard
    assert monthly_storage_cost(ia, usage) > monthly_storage_cost(standard, usage)
    # The same bytes as one large object: Standard-IA is the cheaper class again.
    large = StorageUsage.from_sizes([10 * MiB], SMALL)
    assert monthly_storage_cost(ia, large) < monthly_storage_cost(standard, large)


def test_hand_computed_standard_ia_minimum_size():
    # 1,000 objects of 10 KiB in Standard-IA (us-east-1, $0.0125 per GiB-month, 128 KiB minimum):
    # billed 1,000 x 128 KiB = 128,000 KiB = 125 MiB = 0.1220703125 GiB; x $0.0125 = $0.00152587890625.
    # Standard ($0.023): 10,000 KiB = 0.00953674316... GiB; x $0.023 = $0.000219345...
    catalog = load_catalog()
    usage = StorageUsage(bytes=10_240_000, objects=1000, small_objects=1000, small_bytes=10_240_000,
                         small_threshold=131_072)
    assert monthly_storage_cost(catalog.class_price("aws_s3", "us-east-1", "STANDARD_IA"), usage) == Decimal(
        "0.00152587890625")
    standard = monthly_storage_cost(catalog.class_price("aws_s3", "us-east-1", "STANDARD"), usage)
    assert round(standard, 9) == Decimal("0.000219345")


def test_glacier_ir_and_one_zone_ia_also_bill_the_minimum_size(s3):
    usage = StorageUsage.from_sizes([1 * KiB] * 10 + [1 * MiB] * 5, SMALL)
    for cls in ("ONEZONE_IA", "GLACIER_IR"):
        price = s3(cls)
        assert monthly_storage_cost(price, usage) == gib(10 * SMALL + 5 * MiB) * price.storage_gb_month


def test_deep_archive_metadata_makes_tiny_objects_cost_more_than_standard(s3):
    tiny = StorageUsage.from_sizes([1 * KiB] * 1000)
    standard, deep = s3("STANDARD"), s3("DEEP_ARCHIVE")
    expected = (gib(1000 * (1 * KiB + 32 * KiB)) * deep.storage_gb_month
                + gib(1000 * 8 * KiB) * standard.storage_gb_month)
    assert monthly_storage_cost(deep, tiny) == expected
    assert monthly_storage_cost(deep, tiny) > monthly_storage_cost(standard, tiny)
    # Large objects: the 40 KiB overhead is negligible and Deep Archive is far cheaper.
    big = StorageUsage.from_sizes([100 * MiB] * 10)
    assert monthly_storage_cost(deep, big) * 10 < monthly_storage_cost(standard, big)


def test_hand_computed_deep_archive_overhead():
    # 1,000 objects of 1 KiB in Deep Archive (us-east-1):
    #   class-rate bytes: 1,000 x (1 + 32) KiB = 33,000 KiB = 0.031471252... GiB x $0.00099 = $0.0000311565...
    #   Standard-rate metadata: 1,000 x 8 KiB = 8,000 KiB = 0.007629394... GiB x $0.023 = $0.000175476...
    #   total $0.000206633...; the same objects in Standard: 1,000 KiB x $0.023 = $0.0000219345...
    catalog = load_catalog()
    usage = StorageUsage(bytes=1_024_000, objects=1000)
    deep = monthly_storage_cost(catalog.class_price("aws_s3", "us-east-1", "DEEP_ARCHIVE"), usage)
    assert round(deep, 9) == Decimal("0.000206633")
    standard = monthly_storage_cost(catalog.class_price("aws_s3", "us-east-1", "STANDARD"), usage)
    assert round(standard, 10) == Decimal("0.0000219345")


def test_glacier_flexible_overhead_uses_the_regions_standard_rate(s3):
    usage = StorageUsage.from_sizes([4 * KiB] * 100)
    glacier, standard = s3("GLACIER", "eu-central-1"), s3("STANDARD", "eu-central-1")
    expected = (gib(100 * (4 * KiB + 32 * KiB)) * glacier.storage_gb_month
                + gib(100 * 8 * KiB) * standard.storage_gb_month)
    assert monthly_storage_cost(glacier, usage) == expected


def test_intelligent_tiering_monitors_and_tiers_only_objects_of_128_kib_or_more(s3):
    it = s3("INTELLIGENT_TIERING")
    usage = StorageUsage.from_sizes([10 * KiB] * 1000 + [SMALL] * 10 + [1 * MiB] * 490, SMALL)
    small_bytes, large_bytes = 1000 * 10 * KiB, 10 * SMALL + 490 * MiB
    fee = Decimal(500) / 1000 * it.monitoring_per_1000_objects
    assert monitoring_cost(it, usage) == fee
    assert monthly_storage_cost(it, usage) == gib(small_bytes + large_bytes) * it.sub_tiers["frequent"] + fee
    archived = monthly_storage_cost(it, usage, sub_tier="archive_instant")
    assert archived == (gib(small_bytes) * it.sub_tiers["frequent"]
                        + gib(large_bytes) * it.sub_tiers["archive_instant"] + fee)
    # Only small objects: no fee at all, and tiering them saves nothing.
    only_small = StorageUsage.from_sizes([10 * KiB] * 1000, SMALL)
    assert monitoring_cost(it, only_small) == 0
    assert monthly_storage_cost(it, only_small, sub_tier="archive_instant") == monthly_storage_cost(it, only_small)
    with pytest.raises(ValueError, match="sub-tier"):
        monthly_storage_cost(it, usage, sub_tier="deep")


def test_usage_counted_against_another_threshold_is_rejected(s3):
    usage = StorageUsage.from_sizes([1 * KiB] * 3, 4096)
    with pytest.raises(ValueError, match="131072"):
        monthly_storage_cost(s3("STANDARD_IA"), usage)
    with pytest.raises(ValueError, match="131072"):
        monthly_storage_cost(s3("INTELLIGENT_TIERING"), usage)
    monthly_storage_cost(s3("STANDARD"), usage)  # no per-object rule: any breakdown will do


def test_storage_usage_rejects_inconsistent_aggregates():
    with pytest.raises(ValueError):
        StorageUsage(bytes=10, objects=1, small_objects=2, small_bytes=5, small_threshold=100)
    with pytest.raises(ValueError):
        StorageUsage(bytes=1000, objects=2, small_objects=2, small_bytes=1000, small_threshold=100)
    with pytest.raises(ValueError):
        StorageUsage(bytes=10, objects=1, small_objects=1, small_bytes=10)  # small without a threshold
    with pytest.raises(ValueError):
        StorageUsage(bytes=-1, objects=0)


def test_each_provider_bills_in_its_own_gb(catalog):
    b2 = catalog.class_price("b2", None, "")
    assert monthly_storage_cost(b2, StorageUsage(GB, 1)) == b2.storage_gb_month
    s3 = catalog.class_price("aws_s3", None, "STANDARD")
    assert monthly_storage_cost(s3, StorageUsage(GiB, 1)) == s3.storage_gb_month
    assert billed_gb(b2, TB) == 1000 and billed_gb(s3, 2 * GiB) == 2


def test_request_costs(s3):
    price = s3("STANDARD_IA")
    cost = monthly_request_cost(price, writes=2500, reads=40_000)
    assert cost == Decimal("2.5") * price.write_per_1000 + 40 * price.read_per_1000
    assert monthly_request_cost(price) == 0


def test_retrieval_cost_by_tier(s3):
    glacier = s3("GLACIER")
    standard, bulk = glacier.retrieval["standard"], glacier.retrieval["bulk"]
    cost = retrieval_cost(glacier, bytes=50 * GiB, objects=2000)
    assert cost == 50 * standard.per_gb + 2 * standard.per_1000
    assert retrieval_cost(glacier, bytes=50 * GiB, objects=2000, tier="bulk") == 50 * bulk.per_gb + 2 * bulk.per_1000
    assert retrieval_cost(s3("STANDARD"), bytes=50 * GiB, objects=2000) == 0
    with pytest.raises(ValueError, match="tier"):
        retrieval_cost(glacier, bytes=1, tier="instant")


def test_egress_is_charged_per_gb_on_hyperscalers(s3):
    price = s3("STANDARD")
    assert egress_cost(price, egress_bytes=10 * GiB) == 10 * price.network.egress_gb


def test_b2_egress_is_free_up_to_three_times_the_stored_volume(catalog):
    b2 = catalog.class_price("b2", None, "")
    ratio, over = b2.network.free_egress_ratio, b2.network.egress_over_ratio_gb
    assert egress_cost(b2, egress_bytes=int(100 * GB * ratio), stored_bytes=100 * GB) == 0
    excess = 350 * GB - 100 * GB * ratio
    assert egress_cost(b2, egress_bytes=350 * GB, stored_bytes=100 * GB) == excess / GB * over
    # by hand: 100 GB stored, 350 GB downloaded: 300 GB free, 50 GB x $0.01 = $0.50
    assert egress_cost(b2, egress_bytes=350 * GB, stored_bytes=100 * GB) == Decimal("0.5")


def test_wasabi_egress_beyond_the_stored_volume_is_infeasible(catalog):
    wasabi = catalog.class_price("wasabi", None, "")
    assert egress_cost(wasabi, egress_bytes=TB, stored_bytes=TB) == 0
    with pytest.raises(Infeasible, match="wasabi"):
        egress_cost(wasabi, egress_bytes=TB + 1, stored_bytes=TB)


def test_transition_cost(s3):
    deep = s3("DEEP_ARCHIVE")
    assert transition_cost(deep, 10_000) == 10 * deep.transition_per_1000
    assert transition_cost(s3("STANDARD"), 10_000) == 0


def test_early_deletion_on_wasabi_before_90_days(catalog):
    wasabi = catalog.class_price("wasabi", None, "")
    days = wasabi.min_storage_days
    cost = early_deletion_cost(wasabi, TB, age_days=30)
    assert cost == Decimal(TB) / wasabi.gb_bytes * wasabi.storage_gb_month * (days - 30) / DAYS_PER_MONTH
    # by hand: 1 TB = 1,000 GB x $0.00699 = $6.99 a month; 60 days left = 2 months = $13.98
    assert cost == Decimal("13.98")
    assert early_deletion_cost(wasabi, TB, age_days=days) == 0
    assert early_deletion_cost(wasabi, TB, age_days=400) == 0
    with pytest.raises(ValueError):
        early_deletion_cost(wasabi, TB, age_days=-1)


def test_early_deletion_uses_billable_bytes_and_none_for_classes_without_a_minimum(s3):
    ia = s3("STANDARD_IA")
    usage = StorageUsage.from_sizes([1 * KiB] * 100, SMALL)
    expected = gib(100 * SMALL) * ia.storage_gb_month * (ia.min_storage_days - 10) / DAYS_PER_MONTH
    assert early_deletion_cost(ia, usage, age_days=10) == expected
    assert early_deletion_cost(s3("STANDARD"), usage, age_days=0) == 0


def test_class_change_costs_transition_early_deletion_and_retrieval_when_warming(s3):
    ia, deep, standard = s3("STANDARD_IA"), s3("DEEP_ARCHIVE"), s3("STANDARD")
    usage = StorageUsage.from_sizes([1 * MiB] * 1000, SMALL)
    colder = class_change_cost(ia, deep, usage, age_days=20)
    assert colder == transition_cost(deep, 1000) + early_deletion_cost(ia, usage, 20)
    warmer = class_change_cost(ia, standard, usage, age_days=45)
    assert warmer == retrieval_cost(ia, bytes=usage.bytes, objects=1000)


def test_one_off_move_adds_up_source_and_destination_charges(catalog, s3):
    source, destination = s3("STANDARD_IA"), catalog.class_price("b2", None, "")
    usage = StorageUsage.from_sizes([2 * MiB] * 3000, SMALL)
    move = one_off_move_cost(source, destination, usage, age_days=10)
    assert move.retrieval == gib(usage.bytes) * source.retrieval["standard"].per_gb
    assert move.reads == 3 * source.read_per_1000
    assert move.egress == gib(usage.bytes) * source.network.egress_gb
    assert move.writes == 3 * destination.write_per_1000 == 0  # B2 uploads are free
    assert move.early_deletion == gib(usage.bytes) * source.storage_gb_month * 20 / DAYS_PER_MONTH
    assert move.total == move.retrieval + move.reads + move.egress + move.writes + move.early_deletion


def test_moving_out_of_wasabi_depends_on_the_accounts_stored_volume(catalog):
    wasabi, b2 = catalog.class_price("wasabi", None, ""), catalog.class_price("b2", None, "")
    usage = StorageUsage(bytes=5 * TB, objects=100)
    assert one_off_move_cost(wasabi, b2, usage, age_days=100).total == 0  # egress <= stored, old enough
    with pytest.raises(Infeasible):
        one_off_move_cost(wasabi, b2, usage, age_days=100, source_stored_bytes=TB)


def test_payback_months():
    assert payback_months(Decimal("10"), Decimal("4")) == Decimal("2.5")
    assert payback_months(Decimal("0"), Decimal("4")) == 0
    assert payback_months(Decimal("10"), Decimal("0")) is None
    assert payback_months(Decimal("10"), Decimal("-1")) is None


def test_wasabi_bills_at_least_one_terabyte_per_account(catalog):
    provider = catalog.provider("wasabi")
    price = catalog.class_price("wasabi", None, "")
    assert account_minimum_cost(provider, price, 200 * GB) == 800 * price.storage_gb_month
    assert account_minimum_cost(provider, price, 2 * TB) == 0
    assert account_minimum_cost(catalog.provider("b2"), catalog.class_price("b2", None, ""), 0) == 0


def test_dropbox_flat_plan_is_free_at_the_margin_until_its_cap(catalog):
    plan = catalog.provider("dropbox").plan("business")
    cap = plan.included_bytes
    assert capacity_bytes(plan, 3) == cap == 9 * TB
    assert monthly_flat_cost(plan, 3) == 3 * plan.seat_month
    assert monthly_flat_cost(plan, 1) == plan.min_seats * plan.seat_month  # billed at the minimum seats
    assert flat_marginal_cost(plan, seats=3, stored_bytes=cap - GB, added_bytes=GB) == 0
    with pytest.raises(Infeasible):
        flat_marginal_cost(plan, seats=3, stored_bytes=cap - GB, added_bytes=GB + 1)
    with pytest.raises(Infeasible):
        seats_needed(plan, cap + 1)  # more seats add no storage on this plan


def test_dropbox_business_plus_grows_with_seats(catalog):
    plan = catalog.provider("dropbox").plan("business_plus")
    assert capacity_bytes(plan, 5) == plan.included_bytes + 2 * plan.bytes_per_extra_seat
    # by hand: 15 TB for 3 seats + 5 TB per extra seat; 22 TB needs 5 seats (4 seats hold only 20 TB)
    assert seats_needed(plan, 22 * TB) == 5
    assert seats_needed(plan, 1 * TB) == 3
    assert capacity_bytes(plan, 10_000) == plan.max_bytes
    with pytest.raises(Infeasible):
        seats_needed(plan, plan.max_bytes + 1)


def test_box_business_has_no_storage_cap(catalog):
    plan = catalog.provider("box").plan()
    assert capacity_bytes(plan, 3) is None
    assert flat_marginal_cost(plan, seats=3, stored_bytes=500 * TB, added_bytes=500 * TB) == 0
    assert seats_needed(plan, 10**15) == plan.min_seats
    assert monthly_flat_cost(plan, 4) == 4 * plan.seat_month
    assert plan.max_file_bytes == 5 * GB


def test_flat_plan_providers_charge_nothing_per_gb(catalog):
    for kind in ("dropbox", "box", "watched_folder"):
        price = catalog.class_price(kind, None, "")
        usage = StorageUsage(bytes=TB, objects=1000)
        assert monthly_storage_cost(price, usage) == 0
        assert egress_cost(price, egress_bytes=TB) == 0


def test_round_money():
    assert round_money(Decimal("0.005")) == Decimal("0.01")
    assert round_money(Decimal("13.98499")) == Decimal("13.98")
