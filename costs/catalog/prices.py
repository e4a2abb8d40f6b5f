"""Catalog data types: what a loaded price file becomes (frozen, pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import MappingProxyType

KNOWN_CLASSES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "aws_s3": ("STANDARD", "INTELLIGENT_TIERING", "STANDARD_IA", "ONEZONE_IA", "GLACIER_IR", "GLACIER",
               "DEEP_ARCHIVE"),
    "gcs": ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"),
    "azure_blob": ("Hot", "Cool", "Cold", "Archive"),
    "b2": ("",),
    "wasabi": ("",),
    "dropbox": ("",),
    "box": ("",),
    "watched_folder": ("",),
})
# Names a backend may report for a catalog class: Wasabi's S3 API calls its only class STANDARD.
CLASS_ALIASES: Mapping[str, Mapping[str, str]] = MappingProxyType({"wasabi": MappingProxyType({"STANDARD": ""})})
DEFAULT_CLASS_KEY = "default"  # YAML key standing for the storage class ""
SIZE_UNITS = {"GiB": 2**30, "GB": 10**9}
EARLY_DELETION_RULES = ("none", "remaining_days")

class CatalogError(ValueError):
    """A catalog file is malformed; the message names the file and the field."""


class UnknownPrice(KeyError):
    """No price for that provider kind or storage class."""


@dataclass(frozen=True)
class RetrievalTier:
    name: str
    per_gb: Decimal
    per_1000: Decimal  # restore / retrieval requests (a GET after the restore is a read)
    hours: Decimal  # time to first byte


@dataclass(frozen=True)
class Network:
    egress_gb: Decimal
    free_egress_ratio: Decimal | None = None  # egress free up to ratio x stored volume (B2 3, Wasabi 1)
    egress_over_ratio_gb: Decimal | None = None  # price above the ratio; None with a ratio = infeasible


@dataclass(frozen=True)
class ClassPrice:
    provider: str
    region_group: str
    storage_class: str
    gb_bytes: int
    effective_date: date
    storage_gb_month: Decimal
    write_per_1000: Decimal
    read_per_1000: Decimal
    transition_per_1000: Decimal  # lifecycle transition / class change INTO this class
    min_storage_days: int
    early_deletion: str
    min_object_bytes: int  # objects smaller than this are billed as this size
    overhead_class_bytes: int  # per-object metadata billed at this class's rate
    overhead_standard_bytes: int  # per-object metadata billed at overhead_standard_gb_month
    overhead_standard_gb_month: Decimal
    monitoring_per_1000_objects: Decimal  # S3 Intelligent-Tiering
    monitoring_min_object_bytes: int  # smaller objects are neither monitored nor tiered
    sub_tiers: Mapping[str, Decimal]
    sub_tier_default: str
    retrieval: Mapping[str, RetrievalTier]
    retrieval_default: str
    network: Network
    sources: Mapping[str, str]  # figure name -> source URL

    def __hash__(self) -> int:  # the mapping fields are unhashable; identity is enough for caching
        return hash((self.provider, self.region_group, self.storage_class, self.effective_date, self.storage_gb_month))

    @property
    def restore_hours(self) -> Decimal:
        """Hours to first byte with the default retrieval tier (0 for online classes)."""
        return self.retrieval[self.retrieval_default].hours

    @property
    def fastest_restore_hours(self) -> Decimal:
        return min(t.hours for t in self.retrieval.values())

    @property
    def small_object_threshold(self) -> int:
        """Size below which an object counts as small for this class (0: no per-object rule)."""
        return max(self.min_object_bytes, self.monitoring_min_object_bytes)

    def figures(self) -> dict[str, Decimal]:
        """Every price/rule figure by the same name as in `sources`."""
        out: dict[str, Decimal] = {
            name: Decimal(getattr(self, name))
            for name in ("storage_gb_month", "write_per_1000", "read_per_1000", "transition_per_1000",
                         "min_storage_days", "min_object_bytes", "overhead_class_bytes", "overhead_standard_bytes",
                         "monitoring_per_1000_objects", "monitoring_min_object_bytes")
        }
        out.update({f"sub_tiers.{k}": v for k, v in self.sub_tiers.items()})
        for tier in self.retrieval.values():
            for field in ("per_gb", "per_1000", "hours"):
                out[f"retrieval.{tier.name}.{field}"] = getattr(tier, field)
        out["egress_gb"] = self.network.egress_gb
        for name in ("free_egress_ratio", "egress_over_ratio_gb"):
            if getattr(self.network, name) is not None:
                out[name] = getattr(self.network, name)
        return out


@dataclass(frozen=True)
class FlatPlan:
    """A per-seat plan with storage included: flat monthly cost, capped capacity (None: unlimited)."""

    provider: str
    name: str
    seat_month: Decimal
    min_seats: int
    included_bytes: int | None  # at min_seats
    bytes_per_extra_seat: int
    max_bytes: int | None
    max_file_bytes: int | None
    bandwidth_bytes_per_seat_month: int | None
    effective_date: date
    sources: Mapping[str, str]


@dataclass(frozen=True)
class ProviderPrices:
    kind: str
    currency: str
    effective_date: date
    gb_bytes: int
    self_hosted: bool
    default_region_group: str
    region_groups: Mapping[str, str]  # region (lower case) -> group
    class_names: tuple[str, ...]
    classes: Mapping[tuple[str, str], ClassPrice]  # (group, class) -> price
    plans: Mapping[str, FlatPlan]
    default_plan: str | None
    account_min_bytes: int  # minimum billed volume per account and month (Wasabi: 1 TB)
    file: str

    def __hash__(self) -> int:
        return hash((self.kind, self.effective_date, self.file))

    def region_group(self, region: str | None) -> str:
        return self.region_groups.get((region or "").strip().lower(), self.default_region_group)

    def class_price(self, region: str | None, storage_class: str | None) -> ClassPrice:
        """Price of a class in a region; "" or None means the provider's default (first) class.

        A backend's name for a class (CLASS_ALIASES) is accepted too."""
        cls = CLASS_ALIASES.get(self.kind, {}).get(storage_class or "", storage_class) or self.class_names[0]
        try:
            return self.classes[(self.region_group(region), cls)]
        except KeyError:
            known = ", ".join(repr(c) for c in self.class_names)
            raise UnknownPrice(f"{self.kind}: no storage class {cls!r} (known: {known})") from None

    def plan(self, name: str | None = None) -> FlatPlan:
        key = name or self.default_plan
        if key not in self.plans:
            raise UnknownPrice(f"{self.kind}: no flat plan {key!r}")
        return self.plans[key]


@dataclass(frozen=True)
class Catalog:
    providers: Mapping[str, ProviderPrices]
    version: str  # "<max effective date>-<content hash>": changes whenever any figure changes
    effective_date: date

    def provider(self, kind: str) -> ProviderPrices:
        try:
            return self.providers[kind]
        except KeyError:
            raise UnknownPrice(f"no prices for provider kind {kind!r}") from None

    def class_price(self, kind: str, region: str | None, storage_class: str | None) -> ClassPrice:
        return self.provider(kind).class_price(region, storage_class)
