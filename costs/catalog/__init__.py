"""Price catalog: one YAML file per provider, loaded into frozen dataclasses (pure: no Django).

File layout (see aws_s3.yaml for a full example)::

    provider: aws_s3            # a kind from KNOWN_CLASSES
    currency: USD
    effective_date: 2025-01-01  # the date the figures were valid
    size_unit: GiB              # what the provider's "GB" means: GiB (2^30 bytes) or GB (10^9 bytes)
    source: https://...         # default source of every figure in the file
    default_region_group: us-east
    region_groups:              # region -> group; an unknown region falls back to the default group
      us-east: {regions: [us-east-1], egress_gb: 0.09, free_egress_ratio: ..., egress_over_ratio_gb: ...}
    classes:
      STANDARD:                 # class-level fields are defaults for every region block below
        min_storage_days: 0
        retrieval: {standard: {per_gb: 0, per_1000: 0, hours: 0}}
        prices:
          us-east: {storage_gb_month: 0.023, write_per_1000: 0.005, read_per_1000: 0.0004}
    plans: ...                  # flat per-seat plans (Dropbox, Box), see FlatPlan

Single-class providers (B2, Wasabi, Dropbox, Box, watched folder) use the YAML key ``default`` for the
backends' storage class ``""``. Any figure may be written ``{value: x, source: url}``; otherwise its source
is the nearest ``source`` key (region block, then class, then file). Sources must be https URLs, except
``operator`` for self-hosted providers. Every figure is a non-negative Decimal (YAML floats are read as
Decimal, never float); a missing or unknown field, an unknown class or a negative price is rejected with
the file and field named.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from types import MappingProxyType

from .loader import FileReader
from .prices import (
    CLASS_ALIASES,
    DEFAULT_CLASS_KEY,
    EARLY_DELETION_RULES,
    KNOWN_CLASSES,
    SIZE_UNITS,
    Catalog,
    CatalogError,
    ClassPrice,
    FlatPlan,
    Network,
    ProviderPrices,
    RetrievalTier,
    UnknownPrice,
)

__all__ = [
    "CLASS_ALIASES", "DEFAULT_CLASS_KEY", "EARLY_DELETION_RULES", "KNOWN_CLASSES", "SIZE_UNITS", "Catalog",
    "CatalogError", "ClassPrice", "FlatPlan", "Network", "ProviderPrices", "RetrievalTier", "UnknownPrice",
    "default_catalog", "load_catalog",
]


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load every ``*.yaml`` in `path` (default: this package directory); every known provider is required."""
    folder = Path(path) if path is not None else Path(__file__).parent
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise CatalogError(f"{folder}: no *.yaml price files")
    digest = hashlib.sha256()
    providers: dict[str, ProviderPrices] = {}
    for file in files:
        raw = file.read_bytes()
        digest.update(file.name.encode() + b"\0" + raw + b"\0")
        prices = FileReader(file.name, raw).parse()
        if prices.kind in providers:
            other = providers[prices.kind].file
            raise CatalogError(f"{file.name}: provider: {prices.kind!r} already defined in {other}")
        providers[prices.kind] = prices
    missing = sorted(set(KNOWN_CLASSES) - set(providers))
    if missing:
        raise CatalogError(f"{folder}: no price file for provider(s) {', '.join(missing)}")
    newest = max(p.effective_date for p in providers.values())
    return Catalog(MappingProxyType(providers), f"{newest.isoformat()}-{digest.hexdigest()[:12]}", newest)


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return load_catalog()
