"""What the optimiser sees and what it proposes (pure: no Django, no I/O): cohorts of assets, the copies
they have, and proposals.

A cohort is the assets of one wedding with one kind in one size band; the model builds cohorts from
database aggregates, so the optimiser never walks single assets. Size bands split at the catalog's
small-object thresholds, so every object in a band is either "small" for a class or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from backups.protection import Copy
from costs.catalog import Catalog, ClassPrice
from costs.pricing import (
    Infeasible,
    StorageUsage,
    egress_cost,
    monthly_request_cost,
    monthly_storage_cost,
    retrieval_cost,
)
from providers.residency import region_allowed

PINNED_BAND = -1  # MANIFEST files: always kept hot, never moved


@dataclass(frozen=True)
class ProviderInfo:
    id: int
    name: str
    kind: str
    region: str
    zone: str
    classes: tuple[str, ...]
    can_change_class: bool = False
    accepts_work: bool = True
    available: bool = True
    stored_bytes: int = 0
    capacity_bytes: int | None = None  # free space left for moves: quota or flat-plan cap (None: unlimited)
    flat: bool = False  # a per-seat plan: marginal storage costs nothing until the cap
    lifecycle_rules: bool = False  # the provider can move objects between classes by age itself


@dataclass(frozen=True)
class CopyGroup:
    """The replicas of one cohort on one provider in one class."""

    provider_id: int
    storage_class: str
    objects: int
    bytes: int
    current: int  # verified replicas holding the asset's current sha256
    class_age_days: int = 0  # age of the youngest object in this class (early-deletion charges)
    locked: bool = False  # some of these copies are under Object Lock: they stay where and as they are


@dataclass(frozen=True)
class Cohort:
    wedding_id: int
    zone: str
    plan: str
    age_days: int
    asset_kind: str
    band: int  # index into Fleet.thresholds; len(thresholds) = large; PINNED_BAND = manifest
    assets: int
    bytes: int
    copies: tuple[CopyGroup, ...]
    accessed_days_ago: int | None = None
    access_bytes_month: int = 0


@dataclass
class Fleet:
    thresholds: tuple[int, ...]  # ascending small-object thresholds found in the catalog
    providers: dict[int, ProviderInfo]
    cohorts: list[Cohort] = field(default_factory=list)

    def band_limit(self, band: int) -> int | None:
        """Exclusive upper size bound of a band (None: unbounded)."""
        return self.thresholds[band] if 0 <= band < len(self.thresholds) else None

    def is_small(self, band: int) -> bool:
        return band == PINNED_BAND or self.band_limit(band) is not None


def usage_for(fleet: Fleet, band: int, price: ClassPrice, objects: int, size: int) -> StorageUsage:
    threshold = price.small_object_threshold
    limit = fleet.band_limit(band)
    small = band != PINNED_BAND and bool(threshold) and limit is not None and limit <= threshold
    return StorageUsage(size, objects, objects if small else 0, size if small else 0, threshold)


def storage_monthly(catalog: Catalog, fleet: Fleet, provider: ProviderInfo, storage_class: str, band: int,
                    objects: int, size: int) -> Decimal:
    """Monthly storage for a copy group; a flat-plan provider costs nothing at the margin."""
    if provider.flat or not objects:
        return Decimal(0)
    price = catalog.class_price(provider.kind, provider.region, storage_class)
    return monthly_storage_cost(price, usage_for(fleet, band, price, objects, size))


def access_monthly(catalog: Catalog, provider: ProviderInfo, storage_class: str, cohort: Cohort) -> Decimal | None:
    """Expected monthly cost of the reads a cohort gets (retrieval, GETs, egress) served from this copy."""
    if not cohort.access_bytes_month or not cohort.bytes:
        return Decimal(0)
    price = catalog.class_price(provider.kind, provider.region, storage_class)
    size = cohort.access_bytes_month
    objects = max(1, round(cohort.assets * size / cohort.bytes))
    try:
        egress = egress_cost(price, egress_bytes=size, stored_bytes=max(provider.stored_bytes, size))
    except Infeasible:
        return None
    return retrieval_cost(price, bytes=size, objects=objects) + monthly_request_cost(price, reads=objects) + egress


def restore_hours(catalog: Catalog, provider: ProviderInfo, storage_class: str) -> float:
    return float(catalog.class_price(provider.kind, provider.region, storage_class).restore_hours)


def worst_asset_copies(catalog: Catalog, fleet: Fleet, cohort: Cohort, groups: list[CopyGroup], *,
                       enforce_residency: bool = True) -> list[Copy]:
    """The copies of the least protected asset in the cohort, for backups.protection.protection_gap.

    A group holding a current copy of every asset counts as a copy of each; a partial group protects
    nobody for sure, but a partial copy outside the residency zone still breaks residency, so it stays in.
    """
    copies = []
    for g in groups:
        p = fleet.providers[g.provider_id]
        full = g.current >= cohort.assets
        outside = enforce_residency and not region_allowed(cohort.zone, p.zone)
        if full or (g.objects and outside):
            copies.append(Copy(p.id, p.kind, p.zone, verified=True, current=True,
                               restore_hours=restore_hours(catalog, p, g.storage_class), available=p.available))
    return copies


@dataclass(frozen=True)
class Proposal:
    kind: str  # costs.models.Optimization.Kind
    wedding_id: int
    summary: str
    changes: tuple[dict, ...]
    current_monthly: Decimal
    new_monthly: Decimal
    one_off_cost: Decimal
    payback_months: Decimal | None

    @property
    def monthly_saving(self) -> Decimal:
        return self.current_monthly - self.new_monthly
