"""Age-based tiering as the providers' own bucket lifecycle rules (pure: no Django, no I/O, no clock).

Per-object class changes cost our workers a few requests per object (a million objects, millions of requests).
Where a provider declares ``lifecycle_rules``, the lifecycle tiers become one rule per bucket instead: objects
under ``weddings/`` (and, where a class bills small objects at a minimum size, only those of at least that size)
go to the cheapest instantly readable class of the infrequent tier after ``INFREQUENT_AFTER_DAYS`` and of the
archive tier after ``ARCHIVE_AFTER_DAYS``; the provider makes the transitions and bills its own transition
requests (``transition_per_1000`` of the class moved into, per 1,000 objects). Rules use instantly readable classes
only: a rule cannot see an asset's kind, a manifest, a wedding looked at last week or whether another copy of
the asset stays readable, so it must never make an object wait for a restore. A provider gets its rules only when
every cohort still meets the policy under them and the fleet's monthly cost (storage plus reads) falls by enough
to repay the transition requests within ``MAX_PAYBACK_MONTHS``; else the archive step is dropped, then the rule.

What rules cannot do stays per object, planned by the optimiser on the fleet as the rules will leave it: moves
to other providers (provider mix, copy-verify-delete) and classes colder than the rules' (Deep Archive for old
videos; lifecycle never warms an object, so those stay). Rules count object age (since upload), the model counts
wedding age: an object uploaded after the wedding reaches each class that much later than modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from backups.routing import Rules
from costs.catalog import Catalog
from costs.pricing import payback_months, transition_cost
from providers.backends.base_lifecycle import LifecycleRule

from .baselines import AMORTISE_MONTHS, APPLIED_KINDS, Saving, fleet_monthly, lifecycle_class
from .fleet import PINNED_BAND, Cohort, CopyGroup, Fleet, Proposal, ProviderInfo
from .lifecycle import ARCHIVE, ARCHIVE_AFTER_DAYS, INFREQUENT, INFREQUENT_AFTER_DAYS, TIER_CLASSES
from .optimizer import MAX_PAYBACK_MONTHS, gap_after, optimise

WEDDINGS_PREFIX = "weddings/"  # backups.layout.ROOT + "/": every wedding's objects, manifests included
RULE_ID = "wedbackup-tiering"
#: Requests our workers make per object (costs.moves): a class change on S3 is HEAD, COPY, HEAD in the backend
#: and a HEAD to confirm; on GCS a reload, a rewrite and a HEAD; on Azure set-tier and two HEADs. A move is at
#: least a GET, a PUT, a HEAD of each of two surviving copies and a DELETE (multipart uploads add more).
CLASS_CHANGE_REQUESTS = {"aws_s3": 4, "gcs": 3, "azure_blob": 3}
MOVE_REQUESTS = 5
RULE_REQUESTS = 2  # per provider: read the bucket's configuration, write it


@dataclass(frozen=True)
class ProviderRules:
    """The rules for one provider and what they do to the fleet as it is."""

    provider_id: int
    rules: tuple[LifecycleRule, ...]
    objects: int  # objects the provider transitions now: one transition request each
    bytes: int
    transition_cost: Decimal
    current_monthly: Decimal  # the fleet's storage and reads before these rules
    new_monthly: Decimal

    @property
    def monthly_saving(self) -> Decimal:
        return self.current_monthly - self.new_monthly


@dataclass(frozen=True)
class TieringPlan:
    rules: tuple[ProviderRules, ...]
    proposals: tuple[Proposal, ...]  # the per-object work left once the rules ran
    fleet: Fleet  # the fleet as the rules leave it


def provider_rules(provider: ProviderInfo, catalog: Catalog) -> tuple[LifecycleRule, ...]:
    """The tiering rule a provider would get (none when it declares no lifecycle rules or has one class)."""
    table = TIER_CLASSES.get(provider.kind)
    if not provider.lifecycle_rules or table is None:
        return ()
    steps: list[tuple[int, str]] = []
    sizes = [0]
    for tier, after in ((INFREQUENT, INFREQUENT_AFTER_DAYS), (ARCHIVE, ARCHIVE_AFTER_DAYS)):
        prices = [catalog.class_price(provider.kind, provider.region, c) for c in table[tier] if c in provider.classes]
        prices = [p for p in prices if p.restore_hours == 0]
        if not prices:
            continue
        best = min(prices, key=lambda p: p.storage_gb_month)
        previous = catalog.class_price(provider.kind, provider.region, steps[-1][1] if steps else provider.classes[0])
        if best.storage_gb_month >= previous.storage_gb_month or after - (steps[-1][0] if steps else 0) < (
                previous.min_storage_days):
            continue
        steps.append((after, best.storage_class))
        sizes.append(best.small_object_threshold)
    if not steps:
        return ()
    return (LifecycleRule(id=RULE_ID, prefix=WEDDINGS_PREFIX, transitions=tuple(steps), min_size=max(sizes)),)


def _colder(provider: ProviderInfo, target: str, current: str) -> bool:
    order = provider.classes
    return target in order and current in order and order.index(target) > order.index(current)


def fleet_under_rules(fleet: Fleet, rules: Mapping[int, tuple[LifecycleRule, ...]]) -> Fleet:
    """The same copies, each where the providers' rules take it (never warmer; manifests left as they are)."""
    def tiered(cohort: Cohort, g: CopyGroup) -> CopyGroup:
        p = fleet.providers[g.provider_id]
        if cohort.band == PINNED_BAND or not rules.get(g.provider_id):
            return g
        for rule in rules[g.provider_id]:
            cls, since = lifecycle_class(kind=p.kind, classes=p.classes, storage_class=g.storage_class,
                                         age_days=cohort.age_days, largest_bytes=fleet.band_limit(cohort.band),
                                         rules={p.kind: rule.transitions}, min_bytes={p.kind: rule.min_size})
            if since is not None and _colder(p, cls, g.storage_class):
                g = replace(g, storage_class=cls, class_age_days=cohort.age_days - since)
        return g

    cohorts = [replace(c, copies=tuple(tiered(c, g) for g in c.copies)) for c in fleet.cohorts]
    return Fleet(fleet.thresholds, fleet.providers, cohorts)


def _moved(before: Fleet, after: Fleet, provider_id: int) -> tuple[int, int, dict[str, int]]:
    objects = size = 0
    into: dict[str, int] = {}
    for c0, c1 in zip(before.cohorts, after.cohorts, strict=True):
        for g0, g1 in zip(c0.copies, c1.copies, strict=True):
            if g0.provider_id == provider_id and g0.storage_class != g1.storage_class:
                objects, size = objects + g0.objects, size + g0.bytes
                into[g1.storage_class] = into.get(g1.storage_class, 0) + g0.objects
    return objects, size, into


def _safe(before: Fleet, after: Fleet, catalog: Catalog, rules_by_plan: Mapping[str, Rules]) -> bool:
    """No cohort that meets the policy now breaks it under the rules."""
    for c0, c1 in zip(before.cohorts, after.cohorts, strict=True):
        rules = rules_by_plan.get(c0.plan) or Rules()
        if c0.copies != c1.copies and gap_after(c1, list(c1.copies), after, catalog, rules) and not gap_after(
                c0, list(c0.copies), before, catalog, rules):
            return False
    return True


def _evaluate(before: Fleet, now: Decimal, catalog: Catalog, rules_by_plan: Mapping[str, Rules], p: ProviderInfo,
              rules: tuple[LifecycleRule, ...]) -> tuple[ProviderRules, Fleet] | None:
    """``before``: the fleet under the rules chosen so far, costing ``now`` a month."""
    after = fleet_under_rules(before, {p.id: rules})
    if not _safe(before, after, catalog, rules_by_plan):
        return None
    objects, size, into = _moved(before, after, p.id)
    cost = sum((transition_cost(catalog.class_price(p.kind, p.region, cls), n) for cls, n in into.items()),
               Decimal(0))
    new = fleet_monthly(fleet=after, catalog=catalog)
    months = payback_months(cost, now - new)
    if new >= now or months is None or months > MAX_PAYBACK_MONTHS:
        return None
    return ProviderRules(p.id, rules, objects, size, cost, now, new), after


def tiering_plan(fleet: Fleet, catalog: Catalog, rules_by_plan: Mapping[str, Rules], **optimise_kw) -> TieringPlan:
    """Rules per provider that supports them, then the optimiser's per-object proposals on top of them."""
    chosen: list[ProviderRules] = []
    installed: dict[int, tuple[LifecycleRule, ...]] = {}
    after, now = fleet, fleet_monthly(fleet=fleet, catalog=catalog)
    for p in sorted(fleet.providers.values(), key=lambda q: q.id):
        if not p.available:
            continue
        for rule in provider_rules(p, catalog):
            candidates = [rule] + [replace(rule, transitions=rule.transitions[:n])
                                   for n in range(len(rule.transitions) - 1, 0, -1)]
            found = next((r for r in (_evaluate(after, now, catalog, rules_by_plan, p, (c,))
                                      for c in candidates) if r is not None), None)
            if found is not None:
                chosen.append(found[0])
                installed[p.id], after, now = found[0].rules, found[1], found[0].new_monthly
    return TieringPlan(tuple(chosen), tuple(proposals_on_rules(after, catalog, rules_by_plan, installed,
                                                               **optimise_kw)), after)


def proposals_on_rules(fleet: Fleet, catalog: Catalog, rules_by_plan: Mapping[str, Rules],
                       installed: Mapping[int, tuple[LifecycleRule, ...]], **optimise_kw) -> list[Proposal]:
    """The optimiser on a fleet the rules already tiered; a proposal that would warm a copy on a provider with
    rules is left out (the rules would only take it back down)."""
    def warms(change: dict) -> bool:
        p = fleet.providers[change["provider"]]
        return (change["action"] == "change_class" and change["provider"] in installed
                and _colder(p, change["from_class"], change["to_class"]))

    return [prop for prop in optimise(fleet, catalog, rules_by_plan, **optimise_kw)
            if not any(warms(c) for c in prop.changes)]


def worker_requests(proposals: list[Proposal] | tuple[Proposal, ...], providers: Mapping[int, ProviderInfo]) -> int:
    """Requests our workers make to apply these proposals (class changes and moves, per object)."""
    total = 0
    for prop in proposals:
        if prop.kind not in ("lifecycle", "provider_mix"):
            continue
        for c in prop.changes:
            per = MOVE_REQUESTS if c["action"] == "move" else CLASS_CHANGE_REQUESTS.get(
                providers[c["provider"]].kind, 3)
            total += per * c["objects"]
    return total


def tiering_saving(*, fleet: Fleet, catalog: Catalog, rules_by_plan: Mapping[str, Rules], baseline: str,
                   months: int = AMORTISE_MONTHS) -> Saving:
    """As ``baselines.saving_from``, with the rules: their transition requests and the proposals' one-off costs
    spread over ``months``, against ``fleet`` as it is."""
    plan = tiering_plan(fleet, catalog, rules_by_plan)
    applied = [p for p in plan.proposals if p.kind in APPLIED_KINDS]
    after = fleet_monthly(fleet=plan.fleet, catalog=catalog) - sum((p.monthly_saving for p in applied), Decimal(0))
    one_off = sum((r.transition_cost for r in plan.rules), Decimal(0)) + sum((p.one_off_cost for p in applied),
                                                                             Decimal(0))
    return Saving(baseline, fleet_monthly(fleet=fleet, catalog=catalog), after, one_off, months)
