"""What the optimiser saves, against two baselines (pure: no Django, no I/O, no clock).

* **naive**: the fleet as it is stored, every copy in its provider's default class.
* **lifecycle**: the same copies on the same clouds with a careful admin's age-based lifecycle rules already in
  place (what each cloud's own bucket rules can express: object age, and on S3 a minimum object size; they see
  neither the asset's kind nor whether the couple looked at the photos last week). The admin keeps one copy
  instantly readable (GCS ARCHIVE is online) and takes each colder class only after the previous class's
  minimum storage duration, so the rules themselves never pay early deletion; their transition requests are
  already paid (the setup is in place) and not counted.

For each, the optimiser runs on that state; the saving is the state's monthly cost (storage plus the reads the
fleet gets) minus the optimised monthly cost plus the proposals' one-off costs (class-change requests,
retrieval, egress, early deletion) spread over ``AMORTISE_MONTHS``. Per-account charges (flat plans, minimum
volumes) are left out: the reference fleet's clouds have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from backups.routing import Rules
from costs.catalog import Catalog

from .fleet import PINNED_BAND, Cohort, CopyGroup, Fleet, storage_monthly
from .optimizer import access_cost, optimise

AMORTISE_MONTHS = 12
APPLIED_KINDS = ("lifecycle", "provider_mix")  # compression and dedup are advisory: never applied by a job

LifecycleRules = Mapping[str, tuple[tuple[int, str], ...]]
#: Per cloud: (object age in days, class) in order. Each step waits out the previous class's minimum duration.
ADMIN_LIFECYCLE_RULES: LifecycleRules = {
    "aws_s3": ((30, "STANDARD_IA"), (90, "GLACIER_IR"), (180, "DEEP_ARCHIVE")),
    "gcs": ((30, "NEARLINE"), (90, "COLDLINE"), (365, "ARCHIVE")),
    "azure_blob": ((30, "Cool"), (90, "Cold"), (180, "Archive")),
}
#: S3 lifecycle does not transition objects under 128 KiB unless told to (AWS's default since September 2024).
ADMIN_MIN_OBJECT_BYTES: Mapping[str, int] = {"aws_s3": 128 * 1024}


@dataclass(frozen=True)
class Saving:
    """One baseline against the optimiser's result from it."""

    baseline: str
    baseline_monthly: Decimal
    optimised_monthly: Decimal
    one_off: Decimal
    amortise_months: int = AMORTISE_MONTHS

    @property
    def amortised_monthly(self) -> Decimal:
        return self.optimised_monthly + self.one_off / self.amortise_months

    @property
    def monthly_saving(self) -> Decimal:
        return self.baseline_monthly - self.amortised_monthly

    @property
    def percent(self) -> Decimal:
        return 100 * self.monthly_saving / self.baseline_monthly if self.baseline_monthly else Decimal(0)


def lifecycle_class(*, kind: str, classes: tuple[str, ...], storage_class: str, age_days: int,
                    largest_bytes: int | None, rules: LifecycleRules = ADMIN_LIFECYCLE_RULES,
                    min_bytes: Mapping[str, int] = ADMIN_MIN_OBJECT_BYTES) -> tuple[str, int | None]:
    """The class a copy sits in under the rules, and since which object age (None: the rules left it alone).

    ``largest_bytes``: an upper bound of the objects' sizes (None: unbounded), for the minimum-size filter."""
    if largest_bytes is not None and largest_bytes <= min_bytes.get(kind, 0):
        return storage_class, None
    chosen: tuple[str, int | None] = (storage_class, None)
    for after_days, cls in rules.get(kind, ()):
        if age_days >= after_days and cls in classes:
            chosen = (cls, after_days)
    return chosen


def lifecycle_baseline(*, fleet: Fleet, rules: LifecycleRules = ADMIN_LIFECYCLE_RULES,
                       min_bytes: Mapping[str, int] = ADMIN_MIN_OBJECT_BYTES) -> Fleet:
    """The same copies as ``fleet``, each moved by the rules (manifests and locked copies stay as they are)."""
    def tiered(cohort: Cohort, g: CopyGroup) -> CopyGroup:
        p = fleet.providers[g.provider_id]
        if cohort.band == PINNED_BAND or g.locked:
            return g
        cls, since = lifecycle_class(kind=p.kind, classes=p.classes, storage_class=g.storage_class,
                                     age_days=cohort.age_days, largest_bytes=fleet.band_limit(cohort.band),
                                     rules=rules, min_bytes=min_bytes)
        return g if since is None else replace(g, storage_class=cls, class_age_days=cohort.age_days - since)

    cohorts = [replace(c, copies=tuple(tiered(c, g) for g in c.copies)) for c in fleet.cohorts]
    return Fleet(fleet.thresholds, fleet.providers, cohorts)


def fleet_monthly(*, fleet: Fleet, catalog: Catalog) -> Decimal:
    """Storage of every copy group plus the reads each cohort gets, served as a restore would serve them."""
    total = Decimal(0)
    for c in fleet.cohorts:
        total += sum((storage_monthly(catalog, fleet, fleet.providers[g.provider_id], g.storage_class, c.band,
                                      g.objects, g.bytes) for g in c.copies), Decimal(0))
        total += access_cost(catalog, fleet, c, list(c.copies))
    return total


def saving_from(*, fleet: Fleet, catalog: Catalog, rules_by_plan: Mapping[str, Rules], baseline: str,
                months: int = AMORTISE_MONTHS) -> Saving:
    """The optimiser's applied proposals on ``fleet``, as a Saving against ``fleet`` itself."""
    proposals = [p for p in optimise(fleet, catalog, rules_by_plan) if p.kind in APPLIED_KINDS]
    start = fleet_monthly(fleet=fleet, catalog=catalog)
    saved = sum((p.monthly_saving for p in proposals), Decimal(0))
    one_off = sum((p.one_off_cost for p in proposals), Decimal(0))
    return Saving(baseline, start, start - saved, one_off, months)


def savings_against_baselines(*, fleet: Fleet, catalog: Catalog, rules_by_plan: Mapping[str, Rules],
                              months: int = AMORTISE_MONTHS) -> tuple[Saving, Saving]:
    """(against the naive placement as stored, against the same copies under the admin's lifecycle rules)."""
    common = {"catalog": catalog, "rules_by_plan": rules_by_plan, "months": months}
    return (saving_from(fleet=fleet, baseline="naive default classes", **common),
            saving_from(fleet=lifecycle_baseline(fleet=fleet), baseline="age-based lifecycle rules", **common))
