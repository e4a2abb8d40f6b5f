"""Lifecycle rules: which storage classes a cohort may sit in, by wedding age, access and asset kind (pure)."""

from __future__ import annotations

from .fleet import Cohort, Fleet

HOT, INFREQUENT, ARCHIVE, DEEP = "hot", "infrequent", "archive", "deep_archive"
TIERS = (HOT, INFREQUENT, ARCHIVE, DEEP)
INFREQUENT_AFTER_DAYS = 30
ARCHIVE_AFTER_DAYS = 365
VIDEO_DEEP_AFTER_DAYS = 180
RECENT_ACCESS_DAYS = 30  # a wedding looked at this recently is treated as new

# Classes by the tier they first become allowed in. One Zone-IA is left out on purpose: one data centre is
# not what a backup copy is for. Intelligent-Tiering is left out: its price depends on access we cannot see.
TIER_CLASSES: dict[str, dict[str, tuple[str, ...]]] = {
    "aws_s3": {HOT: ("STANDARD",), INFREQUENT: ("STANDARD_IA",), ARCHIVE: ("GLACIER_IR", "GLACIER"),
               DEEP: ("DEEP_ARCHIVE",)},
    "gcs": {HOT: ("STANDARD",), INFREQUENT: ("NEARLINE",), ARCHIVE: ("COLDLINE", "ARCHIVE"), DEEP: ()},
    "azure_blob": {HOT: ("Hot",), INFREQUENT: ("Cool",), ARCHIVE: ("Cold", "Archive"), DEEP: ()},
}


def tier_for(cohort: Cohort, fleet: Fleet) -> str:
    """The coldest tier the cohort may use. Small objects and manifests stay hot (per-object minimums)."""
    if fleet.is_small(cohort.band):
        return HOT
    if cohort.accessed_days_ago is not None and cohort.accessed_days_ago <= RECENT_ACCESS_DAYS:
        return HOT
    age = cohort.age_days
    if age <= INFREQUENT_AFTER_DAYS:
        return HOT
    if cohort.asset_kind == "document":
        return INFREQUENT
    if cohort.asset_kind == "video" and age > VIDEO_DEEP_AFTER_DAYS:
        return DEEP
    return ARCHIVE if age > ARCHIVE_AFTER_DAYS else INFREQUENT


def allowed_classes(kind: str, provider_classes: tuple[str, ...], tier: str) -> tuple[str, ...]:
    """Classes a copy on this provider kind may use at `tier` (single-class providers: their one class)."""
    table = TIER_CLASSES.get(kind)
    if table is None:
        return provider_classes[:1]
    out: list[str] = []
    for name in TIERS[: TIERS.index(tier) + 1]:
        out.extend(c for c in table[name] if c in provider_classes)
    return tuple(out)
