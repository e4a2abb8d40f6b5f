"""Price arithmetic on catalog figures (pure: no Django, no I/O).

Conventions, applied by every function here:

* Money is ``Decimal`` USD and is never rounded here (round for display only, with `round_money`).
* Sizes are ``int`` bytes. A "per GB" figure is per the provider's own billing unit,
  ``ClassPrice.gb_bytes``, taken from the catalog file's ``size_unit``: S3, GCS and Azure bill a binary
  GB (GiB, 2**30 bytes); B2, Wasabi, Dropbox and Box bill decimal GB (10**9 bytes). Bytes become billed
  GB only through `billed_gb`, so the convention lives in one place.
* Pro-rated charges (early deletion) use a 30-day month, as the providers' own worked examples do.
* Free tiers and volume discounts are ignored (first-tier list prices): estimates err on the high side.
* Per-object rules need a per-object view that a database aggregate can provide: `StorageUsage` holds
  totals plus the count and bytes of objects *smaller than* ``small_threshold`` (S3 Standard-IA, One
  Zone-IA and Glacier IR bill such objects as 128 KiB; Intelligent-Tiering neither monitors nor tiers
  them; Wasabi bills them as 4 KB). Use ``ClassPrice.small_object_threshold`` for the aggregate; a usage
  counted against another threshold is rejected rather than silently mispriced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from costs.catalog import ClassPrice, FlatPlan, ProviderPrices

DAYS_PER_MONTH = 30
_THOUSAND = Decimal(1000)


class Infeasible(ValueError):
    """The placement cannot be priced because the provider would not allow it (over a cap or a fair-use rule)."""


@dataclass(frozen=True)
class StorageUsage:
    """What is stored in one class: totals plus the objects below ``small_threshold`` bytes."""

    bytes: int
    objects: int
    small_objects: int = 0
    small_bytes: int = 0
    small_threshold: int = 0

    def __post_init__(self) -> None:
        if min(self.bytes, self.objects, self.small_objects, self.small_bytes, self.small_threshold) < 0:
            raise ValueError(f"negative usage: {self}")
        if self.small_objects > self.objects or self.small_bytes > self.bytes:
            raise ValueError(f"small objects exceed the totals: {self}")
        if self.small_objects and self.small_bytes > self.small_objects * (self.small_threshold - 1):
            raise ValueError(f"small objects must each be under {self.small_threshold} bytes: {self}")

    @classmethod
    def from_sizes(cls, sizes: Iterable[int], small_threshold: int = 0) -> StorageUsage:
        """Build from object sizes (tests, small lists); the model builds it from SQL aggregates."""
        sizes = list(sizes)
        small = [s for s in sizes if s < small_threshold]
        return cls(sum(sizes), len(sizes), len(small), sum(small), small_threshold)


def billed_gb(price: ClassPrice, size: int) -> Decimal:
    return Decimal(size) / Decimal(price.gb_bytes)


def round_money(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _per_1000(count: int, rate: Decimal) -> Decimal:
    if count < 0:
        raise ValueError(f"negative count {count}")
    return Decimal(count) / _THOUSAND * rate


def _check_threshold(price: ClassPrice, usage: StorageUsage, needed: int) -> None:
    if needed and usage.objects and usage.small_threshold != needed:
        raise ValueError(f"{price.provider} {price.storage_class or 'default'}: usage counts small objects below "
                         f"{usage.small_threshold} bytes, this class needs them below {needed}")


def billable_bytes(price: ClassPrice, usage: StorageUsage) -> int:
    """Bytes billed at the class rate: small objects rounded up to the minimum, plus per-object overhead."""
    billed = usage.bytes
    if price.min_object_bytes:
        _check_threshold(price, usage, price.min_object_bytes)
        billed += usage.small_objects * price.min_object_bytes - usage.small_bytes
    return billed + usage.objects * price.overhead_class_bytes


def monitoring_cost(price: ClassPrice, usage: StorageUsage) -> Decimal:
    """Intelligent-Tiering monitoring fee: only objects of at least the monitoring minimum are charged."""
    if not price.monitoring_per_1000_objects:
        return Decimal(0)
    _check_threshold(price, usage, price.monitoring_min_object_bytes)
    monitored = usage.objects - (usage.small_objects if price.monitoring_min_object_bytes else 0)
    return _per_1000(monitored, price.monitoring_per_1000_objects)


def monthly_storage_cost(price: ClassPrice, usage: StorageUsage, *, sub_tier: str | None = None) -> Decimal:
    """Storage for a month, with the minimum billable size, archive metadata overhead and monitoring fee.

    For a class with sub-tiers (S3 Intelligent-Tiering) `sub_tier` says where the monitored objects sit
    (default: ``price.sub_tier_default``, the frequent tier); objects below the monitoring minimum are
    always billed at the default tier.
    """
    if sub_tier is not None and sub_tier not in price.sub_tiers:
        raise ValueError(f"{price.provider} {price.storage_class}: no sub-tier {sub_tier!r}")
    if price.sub_tiers:
        frequent = price.sub_tiers[price.sub_tier_default]
        rate = price.sub_tiers[sub_tier or price.sub_tier_default]
        _check_threshold(price, usage, price.monitoring_min_object_bytes)
        small = usage.small_bytes if price.monitoring_min_object_bytes else 0
        storage = billed_gb(price, usage.bytes - small) * rate + billed_gb(price, small) * frequent
    else:
        storage = billed_gb(price, billable_bytes(price, usage)) * price.storage_gb_month
    overhead = billed_gb(price, usage.objects * price.overhead_standard_bytes) * price.overhead_standard_gb_month
    return storage + overhead + monitoring_cost(price, usage)


def monthly_request_cost(price: ClassPrice, *, writes: int = 0, reads: int = 0) -> Decimal:
    """PUT-like (writes) and GET-like (reads) requests at the class's per-1,000 rates."""
    return _per_1000(writes, price.write_per_1000) + _per_1000(reads, price.read_per_1000)


def retrieval_cost(price: ClassPrice, *, bytes: int, objects: int = 0, tier: str | None = None) -> Decimal:
    """Retrieval / restore fee (per GB plus per restore request); GETs and egress are priced separately."""
    name = tier or price.retrieval_default
    if name not in price.retrieval:
        raise ValueError(f"{price.provider} {price.storage_class}: no retrieval tier {name!r}")
    chosen = price.retrieval[name]
    return billed_gb(price, bytes) * chosen.per_gb + _per_1000(objects, chosen.per_1000)


def egress_cost(price: ClassPrice, *, egress_bytes: int, stored_bytes: int = 0) -> Decimal:
    """Internet egress for a month; where egress is free up to a ratio of the stored volume (B2 3x,
    Wasabi 1x), only the excess is charged, and with no published excess price (Wasabi) it is infeasible.
    """
    net = price.network
    if net.free_egress_ratio is None:
        return billed_gb(price, egress_bytes) * net.egress_gb
    excess = Decimal(egress_bytes) - Decimal(stored_bytes) * net.free_egress_ratio
    if excess <= 0:
        return billed_gb(price, egress_bytes) * net.egress_gb
    if net.egress_over_ratio_gb is None:
        raise Infeasible(f"{price.provider}: egress of {egress_bytes} bytes exceeds {net.free_egress_ratio} x "
                         f"the {stored_bytes} bytes stored, outside the free-egress policy")
    free = Decimal(egress_bytes) - excess
    return (free * net.egress_gb + excess * net.egress_over_ratio_gb) / Decimal(price.gb_bytes)


def transition_cost(destination: ClassPrice, objects: int) -> Decimal:
    """Lifecycle transition / class-change requests into `destination`."""
    return _per_1000(objects, destination.transition_per_1000)


def early_deletion_cost(price: ClassPrice, usage: StorageUsage | int, age_days: int | Decimal) -> Decimal:
    """Charge for removing (or moving out) data younger than the class's minimum storage duration:
    the remaining days of the minimum at the class's storage rate (on billable bytes when given a usage).
    """
    if age_days < 0:
        raise ValueError(f"negative age {age_days}")
    remaining = max(Decimal(0), Decimal(price.min_storage_days) - Decimal(age_days))
    if price.early_deletion == "none" or not remaining:
        return Decimal(0)
    size = billable_bytes(price, usage) if isinstance(usage, StorageUsage) else usage
    return billed_gb(price, size) * price.storage_gb_month * remaining / DAYS_PER_MONTH


def class_change_cost(source: ClassPrice, destination: ClassPrice, usage: StorageUsage, *,
                      age_days: int | Decimal) -> Decimal:
    """One-off cost of changing class in place: transition requests, early deletion at the source, and
    when moving to a dearer (warmer) class, reading the data out of the source (retrieval fee).
    """
    cost = transition_cost(destination, usage.objects) + early_deletion_cost(source, usage, age_days)
    if destination.storage_gb_month > source.storage_gb_month:
        cost += retrieval_cost(source, bytes=usage.bytes, objects=usage.objects)
    return cost


@dataclass(frozen=True)
class MoveCost:
    retrieval: Decimal
    reads: Decimal
    egress: Decimal
    writes: Decimal
    early_deletion: Decimal

    @property
    def total(self) -> Decimal:
        return self.retrieval + self.reads + self.egress + self.writes + self.early_deletion


def one_off_move_cost(source: ClassPrice, destination: ClassPrice, usage: StorageUsage, *, age_days: int | Decimal,
                      source_stored_bytes: int | None = None, retrieval_tier: str | None = None) -> MoveCost:
    """Copy-verify-delete to another provider: retrieve + GET + egress at the source, PUT at the
    destination, early deletion at the source. `source_stored_bytes` is the source account's stored volume
    for free-egress ratios (default: the moved bytes). Multipart uploads count one PUT per object.
    """
    stored = usage.bytes if source_stored_bytes is None else source_stored_bytes
    return MoveCost(
        retrieval=retrieval_cost(source, bytes=usage.bytes, objects=usage.objects, tier=retrieval_tier),
        reads=monthly_request_cost(source, reads=usage.objects),
        egress=egress_cost(source, egress_bytes=usage.bytes, stored_bytes=stored),
        writes=monthly_request_cost(destination, writes=usage.objects),
        early_deletion=early_deletion_cost(source, usage, age_days),
    )


def payback_months(one_off: Decimal, monthly_saving: Decimal) -> Decimal | None:
    """Months until the saving repays the one-off cost; 0 if nothing to repay, None if it never does."""
    if one_off <= 0:
        return Decimal(0)
    if monthly_saving <= 0:
        return None
    return one_off / monthly_saving


def account_minimum_cost(provider: ProviderPrices, price: ClassPrice, stored_bytes: int) -> Decimal:
    """Top-up to the provider's minimum billed volume per account (Wasabi bills at least 1 TB a month)."""
    shortfall = max(0, provider.account_min_bytes - stored_bytes)
    return billed_gb(price, shortfall) * price.storage_gb_month


# Flat per-seat plans (Dropbox, Box): storage is included, so storing more costs nothing until the cap.

def capacity_bytes(plan: FlatPlan, seats: int) -> int | None:
    """Storage included with `seats` licences (billed at no fewer than the plan minimum); None: unlimited."""
    if plan.included_bytes is None:
        return None
    cap = plan.included_bytes + (max(seats, plan.min_seats) - plan.min_seats) * plan.bytes_per_extra_seat
    return cap if plan.max_bytes is None else min(cap, plan.max_bytes)


def monthly_flat_cost(plan: FlatPlan, seats: int) -> Decimal:
    return max(seats, plan.min_seats) * plan.seat_month


def seats_needed(plan: FlatPlan, stored_bytes: int) -> int:
    """Fewest licences whose included storage holds `stored_bytes`; Infeasible if no number does."""
    cap = capacity_bytes(plan, plan.min_seats)
    if cap is None or stored_bytes <= cap:
        return plan.min_seats
    if plan.bytes_per_extra_seat == 0 or (plan.max_bytes is not None and stored_bytes > plan.max_bytes):
        raise Infeasible(f"{plan.provider} {plan.name}: {stored_bytes} bytes exceed the plan's cap")
    extra = -(-(stored_bytes - cap) // plan.bytes_per_extra_seat)
    return plan.min_seats + extra


def flat_marginal_cost(plan: FlatPlan, *, seats: int, stored_bytes: int, added_bytes: int) -> Decimal:
    """Marginal monthly cost of storing `added_bytes` more: 0 within the cap, Infeasible beyond it."""
    cap = capacity_bytes(plan, seats)
    if cap is not None and stored_bytes + added_bytes > cap:
        raise Infeasible(f"{plan.provider} {plan.name} with {seats} seats holds {cap} bytes; "
                         f"{stored_bytes} + {added_bytes} would exceed it")
    return Decimal(0)
