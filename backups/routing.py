"""Wedding-aware routing: data in, a placement plan out. Pure: no database, no SDK, no clock.

A plan names, for one asset, the providers, regions and storage classes that should hold it and why.
The policy (min copies, distinct providers, residency, a fast-restorable copy) always holds, or the
plan is infeasible and says exactly why. "Distinct providers" counts vendors (kinds): two S3 buckets
in two regions are one provider for that rule, but they do satisfy a cross-region copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from providers.residency import NONE, region_allowed

HIGH_RES_MEGAPIXELS = 12.0
# Classes that still read instantly but cost less, used for archival weddings.
COLD_CLASS = {"aws_s3": "GLACIER_IR", "gcs": "COLDLINE", "azure_blob": "Cool"}
COST_SAVER_KINDS = ("b2", "wasabi")
# A provider's status as routing sees it: providers.models.Provider.Status, or this for a disabled provider.
DISABLED = "disabled"


@dataclass(frozen=True)
class ProviderState:
    id: int
    name: str
    kind: str
    region: str
    zone: str
    accepts_work: bool = True
    status: str = "active"
    free_bytes: int | None = None  # None: no quota
    default_class: str = ""
    storage_classes: tuple[str, ...] = ("",)
    price_per_gb_month: dict[str, Decimal] = field(default_factory=dict)  # by class
    restore_hours: dict[str, float] = field(default_factory=dict)  # by class; missing = 0
    health: float = 1.0  # 0 (failing) .. 1 (healthy)

    def price(self, storage_class: str) -> Decimal:
        return self.price_per_gb_month.get(storage_class, self.price_per_gb_month.get("", Decimal("0.05")))

    def class_or_default(self, storage_class: str | None) -> str:
        if storage_class and storage_class in self.storage_classes:
            return storage_class
        return self.default_class if self.default_class in self.storage_classes else self.storage_classes[0]


@dataclass(frozen=True)
class WeddingTraits:
    zone: str = NONE
    plan: str = "standard"
    requires_ml_analysis: bool = False
    wedding_day_critical: bool = False
    archival: bool = False  # past the delivery window


@dataclass(frozen=True)
class AssetTraits:
    kind: str
    size: int
    width: int | None = None
    height: int | None = None

    @property
    def high_resolution(self) -> bool:
        if self.kind == "raw_photo":
            return True
        return self.kind == "photo" and (self.width or 0) * (self.height or 0) / 1e6 >= HIGH_RES_MEGAPIXELS


@dataclass(frozen=True)
class Rules:
    min_copies: int = 3
    min_distinct_providers: int = 2
    enforce_residency: bool = True
    cross_region_copy: bool = False
    critical_extra_copies: int = 1
    max_restore_hours: float = 12

    @classmethod
    def from_policy(cls, values: dict) -> Rules:
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Placement:
    provider_id: int
    provider_name: str
    kind: str
    region: str
    storage_class: str
    reason: str


@dataclass
class PlacementPlan:
    placements: list[Placement]
    feasible: bool
    problem: str = ""
    queue: str = "default"
    notes: list[str] = field(default_factory=list)

    @property
    def provider_ids(self) -> list[int]:
        return [p.provider_id for p in self.placements]


@dataclass(frozen=True)
class _Wish:
    kinds: tuple[str, ...]
    storage_class: str | None
    reason: str
    region_zone: str | None = None


def _wishes(wedding: WeddingTraits, asset: AssetTraits) -> list[_Wish]:
    """The seed brief's rules, strongest first."""
    wishes = []
    if wedding.zone == "EU":
        wishes.append(_Wish(("azure_blob",), None, "EU residency: Azure in an EU region first", "EU"))
    if asset.high_resolution:
        label = "raw photo" if asset.kind == "raw_photo" else "high-resolution photo"
        wishes.append(_Wish(("aws_s3",), "INTELLIGENT_TIERING", f"{label}: S3 Intelligent-Tiering"))
    if wedding.requires_ml_analysis:
        wishes.append(_Wish(("gcs",), "STANDARD", "wedding needs ML analysis: GCS Standard"))
    if wedding.plan == "cost-saver":
        wishes.append(_Wish(COST_SAVER_KINDS, None, "cost-saver plan: low-cost provider"))
    if wedding.archival:
        wishes.append(_Wish(("wasabi",), None, "archival wedding: Wasabi"))
    return wishes


def _exclusion(p: ProviderState, wedding: WeddingTraits, asset: AssetTraits, rules: Rules) -> str | None:
    if not p.accepts_work:
        return f"{p.name}: {p.status}"
    if p.free_bytes is not None and p.free_bytes < asset.size:
        return f"{p.name}: full"
    if rules.enforce_residency and not region_allowed(wedding.zone, p.zone):
        return f"{p.name}: region {p.region or 'unknown'} is outside {wedding.zone} residency"
    return None


def route(
    wedding: WeddingTraits,
    asset: AssetTraits,
    rules: Rules,
    providers: list[ProviderState],
    *,
    keep: frozenset[int] = frozenset(),
) -> PlacementPlan:
    """Choose where one asset goes. ``keep``: providers already holding a verified copy (preferred, no re-upload)."""
    queue = "critical" if wedding.wedding_day_critical else ("bulk" if wedding.archival else "default")
    wanted = rules.min_copies + (rules.critical_extra_copies if wedding.wedding_day_critical else 0)
    eligible, excluded = [], []
    for p in providers:
        why = _exclusion(p, wedding, asset, rules)
        (excluded if why else eligible).append(why or p)

    vendors = {p.kind for p in eligible}
    if len(eligible) < rules.min_copies or len(vendors) < rules.min_distinct_providers:
        need = f"{rules.min_copies} copies on {rules.min_distinct_providers} distinct providers"
        have = f"{len(eligible)} usable provider(s) from {len(vendors)} vendor(s)"
        detail = "; ".join(excluded) or "no providers configured"
        return PlacementPlan([], False, f"needs {need} but has {have} ({detail})", queue)
    wanted = min(wanted, len(eligible))
    notes: list[str] = []
    if rules.cross_region_copy and len({p.region for p in eligible}) < 2:
        # A soft rule: asked for, but never at the price of the hard ones.
        notes.append("cross-region copy asked for, but only one region is usable")
        rules = replace(rules, cross_region_copy=False)

    picks: list[_Pick] = []

    def fits(p: ProviderState) -> bool:
        """Adding p leaves enough slots for the distinct-vendor and cross-region rules."""
        after = [q.provider for q in picks] + [p]
        slots_left = wanted - len(after)
        missing_vendors = rules.min_distinct_providers - len({q.kind for q in after})
        missing_regions = (2 - len({q.region for q in after})) if rules.cross_region_copy else 0
        return max(missing_vendors, missing_regions, 0) <= slots_left

    def rank(p: ProviderState, storage_class: str) -> tuple:
        return (p.id not in keep, -p.health, p.price(storage_class), p.name)

    for wish in _wishes(wedding, asset):
        if len(picks) == wanted:
            notes.append(f"not applied ({wanted} copies already chosen): {wish.reason}")
            continue
        chosen = {q.provider.id for q in picks}
        candidates = [p for p in eligible if p.kind in wish.kinds and p.id not in chosen and fits(p)]
        if wish.region_zone:
            candidates = [p for p in candidates if p.zone == wish.region_zone]
        if not candidates:
            notes.append(f"no usable provider for: {wish.reason}")
            continue
        best = min(candidates, key=lambda p: rank(p, p.class_or_default(wish.storage_class)))
        pinned = wish.storage_class is not None
        picks.append(_Pick(best, best.class_or_default(wish.storage_class), wish.reason, pinned))

    while len(picks) < wanted:
        chosen = {q.provider.id for q in picks}
        used_vendors = {q.provider.kind for q in picks}
        used_regions = {q.provider.region for q in picks}
        candidates = [p for p in eligible if p.id not in chosen and fits(p)]
        if not candidates:
            break
        best = min(
            candidates,
            key=lambda p: (
                p.kind in used_vendors,
                not (rules.cross_region_copy and p.region not in used_regions),
                *rank(p, p.class_or_default(None)),
            ),
        )
        if best.kind not in used_vendors and len(used_vendors) < rules.min_distinct_providers:
            reason = f"distinct provider {len(used_vendors) + 1} of {rules.min_distinct_providers}"
        elif rules.cross_region_copy and best.region not in used_regions:
            reason = f"cross-region copy in {best.region}"
        elif best.id in keep:
            reason = "already holds a verified copy"
        else:
            reason = "cheapest healthy provider for the remaining copies"
        picks.append(_Pick(best, best.class_or_default(None), reason))

    if wedding.archival:
        picks = [_cooled(q, rules) for q in picks]
    placements = [
        Placement(q.provider.id, q.provider.name, q.provider.kind, q.provider.region, q.storage_class, q.reason)
        for q in picks
    ]
    problem = _violations(placements, picks, rules)
    return PlacementPlan(placements, not problem, problem, queue, notes)


@dataclass(frozen=True)
class _Pick:
    provider: ProviderState
    storage_class: str
    reason: str
    pinned: bool = False  # a rule asked for this class


def _cooled(pick: _Pick, rules: Rules) -> _Pick:
    """Archival weddings: a cooler, still instantly readable class where no rule pinned the class."""
    cold = COLD_CLASS.get(pick.provider.kind)
    p = pick.provider
    if pick.pinned or not cold or cold not in p.storage_classes:
        return pick
    if p.restore_hours.get(cold, 0) > rules.max_restore_hours:
        return pick
    return replace(pick, storage_class=cold, reason=f"{pick.reason}; archival wedding: {cold}")


def _violations(placements: list[Placement], picks: list[_Pick], rules: Rules) -> str:
    """The policy check every plan passes before it is used. Empty string: all rules hold."""
    problems = []
    if len(placements) < rules.min_copies:
        problems.append(f"only {len(placements)} of {rules.min_copies} copies placeable")
    if len({p.kind for p in placements}) < rules.min_distinct_providers:
        problems.append(f"fewer than {rules.min_distinct_providers} distinct providers")
    fast = [q for q in picks if q.provider.restore_hours.get(q.storage_class, 0) <= rules.max_restore_hours]
    if placements and not fast:
        problems.append(f"no copy restorable within {rules.max_restore_hours} h")
    return "; ".join(problems)
