"""Advisory proposals: compression and dedup, priced on the placement the optimiser chose (pure). Advisory:
restores cannot read compressed or shared objects yet, so they are shown with why, never applied."""

from __future__ import annotations

from decimal import Decimal

from costs.catalog import Catalog
from costs.pricing import Infeasible, one_off_move_cost, payback_months

from .fleet import PINNED_BAND, Cohort, CopyGroup, Fleet, Proposal, storage_monthly, usage_for

# Formats that are already compressed (JPEG, HEIC, MP4, MOV) gain nothing; these may.
COMPRESSIBLE_KINDS = ("document", "raw_photo")
WORTH_COMPRESSING = 0.9  # compressed/original below this, or leave it


def _monthly(fleet: Fleet, catalog: Catalog, cohort: Cohort, groups: list[CopyGroup], scale: float = 1.0) -> Decimal:
    total = Decimal(0)
    for g in groups:
        size = round(g.bytes * scale)
        total += storage_monthly(catalog, fleet, fleet.providers[g.provider_id], g.storage_class, cohort.band,
                                 g.objects, size)
    return total


def compression_proposal(fleet: Fleet, catalog: Catalog, wedding_id: int, after: list[tuple[Cohort, list]],
                         ratios: dict[tuple[int, str], float]) -> Proposal | None:
    """Store compressible kinds compressed, at the ratio measured on a sample of their real bytes.

    Every copy stays where it is (same providers, classes, count), so the policy is untouched."""
    current = new = one_off = Decimal(0)
    changes = []
    for cohort, groups in after:
        ratio = ratios.get((wedding_id, cohort.asset_kind))
        if cohort.asset_kind not in COMPRESSIBLE_KINDS or ratio is None or ratio >= WORTH_COMPRESSING:
            continue
        if cohort.band == PINNED_BAND:
            continue
        current += _monthly(fleet, catalog, cohort, groups)
        new += _monthly(fleet, catalog, cohort, groups, ratio)
        for g in groups:
            p = fleet.providers[g.provider_id]
            price = catalog.class_price(p.kind, p.region, g.storage_class)
            usage = usage_for(fleet, cohort.band, price, g.objects, g.bytes)
            try:  # read every object out and write it back compressed
                one_off += one_off_move_cost(price, price, usage, age_days=g.class_age_days,
                                             source_stored_bytes=max(p.stored_bytes, g.bytes)).total
            except Infeasible:
                return None
        changes.append({"action": "compress", "asset_kind": cohort.asset_kind, "band": cohort.band,
                        "ratio": ratio, "objects": cohort.assets, "bytes": cohort.bytes})
    if not changes or new >= current or payback_months(one_off, current - new) is None:
        return None
    kinds = sorted({c["asset_kind"] for c in changes})
    summary = f"compress {', '.join(kinds)} (measured ratio {min(c['ratio'] for c in changes):.2f})"
    return Proposal("compression", wedding_id, summary, tuple(changes), current, new, one_off,
                    payback_months(one_off, current - new))


def dedup_proposal(fleet: Fleet, catalog: Catalog, wedding_id: int, after: list[tuple[Cohort, list]],
                   duplicate: tuple[int, int] | None) -> Proposal | None:
    """Identical sha256 within one wedding: keep one stored object (with all its copies) per content.

    Priced at the wedding's average storage cost per byte-copy after the placement changes."""
    if not duplicate or not duplicate[1]:
        return None
    objects, size = duplicate
    total_bytes = sum(c.bytes for c, _ in after if c.band != PINNED_BAND)
    monthly = sum((_monthly(fleet, catalog, c, g) for c, g in after if c.band != PINNED_BAND), Decimal(0))
    if not total_bytes or not monthly:
        return None
    saving = monthly * Decimal(size) / Decimal(total_bytes)
    changes = ({"action": "dedup", "objects": objects, "bytes": size},)
    return Proposal("dedup", wedding_id, f"store {objects} duplicate file(s) once ({size} bytes)", changes,
                    monthly, monthly - saving, Decimal(0), Decimal(0))
