"""The optimiser: a Fleet in, proposals out (pure: no Django, no I/O, no clock).

Every copy group of a cohort gets the cheapest placement its lifecycle tier allows, in place (class
change) or on another feasible provider (copy, verify, delete), when the one-off cost pays back within
MAX_PAYBACK_MONTHS. The result is checked with backups.protection.protection_gap on the copies as they
would be after the class changes alone, the moves alone and both (proposals are applied separately),
and at least one copy must stay instantly readable; a cohort whose plan breaks a rule keeps less or
nothing. Compression and dedup are priced on top of that placement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from backups.protection import protection_gap
from backups.routing import Rules
from costs.catalog import Catalog
from costs.pricing import Infeasible, class_change_cost, one_off_move_cost, payback_months
from providers.residency import region_allowed

from .advisory import compression_proposal, dedup_proposal
from .fleet import (
    PINNED_BAND,
    Cohort,
    CopyGroup,
    Fleet,
    Proposal,
    ProviderInfo,
    access_monthly,
    restore_hours,
    storage_monthly,
    usage_for,
    worst_asset_copies,
)
from .lifecycle import DEEP, allowed_classes, tier_for

MAX_PAYBACK_MONTHS = Decimal(12)
HORIZON_MONTHS = Decimal(24)  # one-off costs are spread over this when comparing options


@dataclass(frozen=True)
class Option:
    provider_id: int
    storage_class: str
    monthly: Decimal
    one_off: Decimal = Decimal(0)


@dataclass
class _Totals:
    changes: list[dict]
    current: Decimal = Decimal(0)
    new: Decimal = Decimal(0)
    one_off: Decimal = Decimal(0)


def optimise(fleet: Fleet, catalog: Catalog, rules_by_plan: Mapping[str, Rules], *,
             ratios: Mapping[tuple[int, str], float] | None = None,
             duplicates: Mapping[int, tuple[int, int]] | None = None) -> list[Proposal]:
    """Proposals per wedding: lifecycle, provider_mix, compression, dedup (each only when it saves money)."""
    by_wedding: dict[int, list[Cohort]] = defaultdict(list)
    for cohort in fleet.cohorts:
        by_wedding[cohort.wedding_id].append(cohort)
    proposals: list[Proposal] = []
    room = {p.id: p.capacity_bytes for p in fleet.providers.values()}  # space left as moves are planned
    for wedding_id, cohorts in sorted(by_wedding.items()):
        lifecycle, mix = _Totals([]), _Totals([])
        after: list[tuple[Cohort, list[CopyGroup]]] = []
        for cohort in cohorts:
            rules = rules_by_plan.get(cohort.plan) or Rules()
            decisions = plan_cohort(cohort, fleet, catalog, rules, room)
            after.append((cohort, [replace(g, provider_id=o.provider_id, storage_class=o.storage_class)
                                   for g, o in decisions]))
            for g, opt in decisions:
                if (opt.provider_id, opt.storage_class) == (g.provider_id, g.storage_class):
                    continue
                moving = opt.provider_id != g.provider_id
                if moving and room.get(opt.provider_id) is not None:
                    room[opt.provider_id] -= g.bytes
                into = mix if moving else lifecycle
                into.changes.append(_change(fleet, cohort, g, opt))
                into.current += storage_monthly(catalog, fleet, fleet.providers[g.provider_id], g.storage_class,
                                                cohort.band, g.objects, g.bytes)
                into.new += opt.monthly
                into.one_off += opt.one_off
            access_delta = access_cost(catalog, fleet, cohort, [g for g, _ in decisions]) - access_cost(
                catalog, fleet, cohort, after[-1][1])
            if access_delta and decisions:
                lifecycle.current += max(access_delta, Decimal(0))
                lifecycle.new += max(-access_delta, Decimal(0))
        for kind, totals in (("lifecycle", lifecycle), ("provider_mix", mix)):
            if totals.changes and totals.new < totals.current:
                proposals.append(_proposal(kind, wedding_id, totals))
        extra = [compression_proposal(fleet, catalog, wedding_id, after, ratios or {}),
                 dedup_proposal(fleet, catalog, wedding_id, after, (duplicates or {}).get(wedding_id))]
        proposals.extend(p for p in extra if p is not None)
    return proposals


def _proposal(kind: str, wedding_id: int, t: _Totals) -> Proposal:
    objects = sum(c["objects"] for c in t.changes)
    verb = "change the storage class of" if kind == "lifecycle" else "move"
    summary = f"{verb} {objects} object copies ({len(t.changes)} groups)"
    return Proposal(kind, wedding_id, summary, tuple(t.changes), t.current, t.new, t.one_off,
                    payback_months(t.one_off, t.current - t.new))


def _change(fleet: Fleet, cohort: Cohort, g: CopyGroup, opt: Option) -> dict:
    lower = fleet.thresholds[cohort.band - 1] if 0 < cohort.band <= len(fleet.thresholds) else 0
    change = {"action": "change_class" if opt.provider_id == g.provider_id else "move",
              "provider": g.provider_id, "from_class": g.storage_class, "to_class": opt.storage_class,
              "asset_kind": cohort.asset_kind, "band": cohort.band, "min_size": lower,
              "max_size": fleet.band_limit(cohort.band), "objects": g.objects, "bytes": g.bytes}
    if opt.provider_id != g.provider_id:
        change["to_provider"] = opt.provider_id
    return change


def access_cost(catalog: Catalog, fleet: Fleet, cohort: Cohort, groups: list[CopyGroup]) -> Decimal:
    """Reads are served by the fastest copy (as restore orders them); the cheapest of those."""
    if not cohort.access_bytes_month or not groups:
        return Decimal(0)
    hours = min(restore_hours(catalog, fleet.providers[g.provider_id], g.storage_class) for g in groups)
    costs = [access_monthly(catalog, fleet.providers[g.provider_id], g.storage_class, cohort) for g in groups
             if restore_hours(catalog, fleet.providers[g.provider_id], g.storage_class) == hours]
    return min((c for c in costs if c is not None), default=Decimal(0))


def gap_after(cohort: Cohort, groups: list[CopyGroup], fleet: Fleet, catalog: Catalog, rules: Rules) -> str:
    """protection_gap of the cohort's least protected asset, plus the instantly-readable-copy rule."""
    copies = worst_asset_copies(catalog, fleet, cohort, groups, enforce_residency=rules.enforce_residency)
    gap = protection_gap(copies, rules, cohort.zone)
    if not gap and not any(c.restore_hours == 0 for c in copies):
        gap = "no instantly readable copy"
    return gap


def plan_cohort(cohort: Cohort, fleet: Fleet, catalog: Catalog, rules: Rules,
                room: dict[int, int | None] | None = None) -> list[tuple[CopyGroup, Option]]:
    """Where each copy group of the cohort should be; unchanged groups map to their current place.

    `room`: free bytes per provider left by moves planned so far (default: each provider's capacity)."""
    room = room if room is not None else {p.id: p.capacity_bytes for p in fleet.providers.values()}
    stay = [(g, _here(cohort, fleet, catalog, g)) for g in cohort.copies]
    if cohort.band == PINNED_BAND or gap_after(cohort, list(cohort.copies), fleet, catalog, rules):
        return stay  # manifests stay put; a cohort already below policy is the repair job's, not ours
    tier = tier_for(cohort, fleet)
    taken = {g.provider_id for g in cohort.copies}
    decisions = []
    for g, here in sorted(stay, key=lambda d: -d[1].monthly):
        best = here if g.locked else _best(cohort, fleet, catalog, rules, g, here, tier, taken, room)
        taken.add(best.provider_id)
        decisions.append((g, best))
    decisions = _keep_one_online(cohort, fleet, catalog, decisions)
    decisions = [(g, _here(cohort, fleet, catalog, g) if g.locked else o) for g, o in decisions]
    for candidate in (decisions, [(g, o if o.provider_id == g.provider_id else h)
                                  for (g, o), (_, h) in zip(decisions, _by_group(stay, decisions), strict=True)]):
        moves_only = [(g, o if o.provider_id != g.provider_id else _here(cohort, fleet, catalog, g))
                      for g, o in candidate]
        classes_only = [(g, o if o.provider_id == g.provider_id else _here(cohort, fleet, catalog, g))
                        for g, o in candidate]
        states = (candidate, moves_only, classes_only)
        if not any(gap_after(cohort, _groups(s), fleet, catalog, rules) for s in states):
            return candidate
    return stay


def _by_group(stay: list[tuple[CopyGroup, Option]], decisions: list[tuple[CopyGroup, Option]]) -> list:
    here = {id(g): (g, o) for g, o in stay}
    return [here[id(g)] for g, _ in decisions]


def _groups(decisions: list[tuple[CopyGroup, Option]]) -> list[CopyGroup]:
    return [replace(g, provider_id=o.provider_id, storage_class=o.storage_class) for g, o in decisions]


def _here(cohort: Cohort, fleet: Fleet, catalog: Catalog, g: CopyGroup) -> Option:
    p = fleet.providers[g.provider_id]
    return Option(p.id, g.storage_class, storage_monthly(catalog, fleet, p, g.storage_class, cohort.band,
                                                         g.objects, g.bytes))


def _best(cohort: Cohort, fleet: Fleet, catalog: Catalog, rules: Rules, g: CopyGroup, here: Option, tier: str,
          taken: set[int], room: dict[int, int | None]) -> Option:
    p = fleet.providers[g.provider_id]
    if not p.available or g.current < g.objects:
        return here
    src = catalog.class_price(p.kind, p.region, g.storage_class)
    usage = usage_for(fleet, cohort.band, src, g.objects, g.bytes)
    options = []
    if p.can_change_class:
        for cls in allowed_classes(p.kind, p.classes, tier):
            if cls != g.storage_class:
                dst = catalog.class_price(p.kind, p.region, cls)
                options.append(Option(p.id, cls, storage_monthly(catalog, fleet, p, cls, cohort.band, g.objects,
                                                                 g.bytes),
                                      class_change_cost(src, dst, usage, age_days=g.class_age_days)))
    for q in fleet.providers.values():
        if not _can_move_to(q, cohort, g, rules, taken, room.get(q.id)):
            continue
        for cls in allowed_classes(q.kind, q.classes, tier):
            dst = catalog.class_price(q.kind, q.region, cls)
            try:
                one_off = one_off_move_cost(src, dst, usage, age_days=g.class_age_days,
                                            source_stored_bytes=max(p.stored_bytes, g.bytes)).total
            except Infeasible:
                continue
            options.append(Option(q.id, cls, storage_monthly(catalog, fleet, q, cls, cohort.band, g.objects,
                                                             g.bytes), one_off))
    best, best_score = here, here.monthly
    for opt in options:
        saving = here.monthly - opt.monthly
        months = payback_months(opt.one_off, saving)
        if saving <= 0 or months is None or months > MAX_PAYBACK_MONTHS:
            continue
        score = opt.monthly + opt.one_off / HORIZON_MONTHS
        if score < best_score:
            best, best_score = opt, score
    return best


def _can_move_to(q: ProviderInfo, cohort: Cohort, g: CopyGroup, rules: Rules, taken: set[int],
                 free: int | None) -> bool:
    if q.id in taken or not q.accepts_work or not q.available:
        return False
    if rules.enforce_residency and not region_allowed(cohort.zone, q.zone):
        return False
    return free is None or free >= g.bytes


def _keep_one_online(cohort: Cohort, fleet: Fleet, catalog: Catalog,
                     decisions: list[tuple[CopyGroup, Option]]) -> list[tuple[CopyGroup, Option]]:
    """Never archive the last instantly readable copy: warm the copy for which that costs least."""
    def online(o: Option) -> bool:
        return restore_hours(catalog, fleet.providers[o.provider_id], o.storage_class) == 0

    if any(online(o) for _, o in decisions):
        return decisions
    best_i, best = None, None
    for i, (g, o) in enumerate(decisions):
        p = fleet.providers[o.provider_id]
        for cls in allowed_classes(p.kind, p.classes, DEEP):
            if restore_hours(catalog, p, cls) != 0:
                continue
            monthly = storage_monthly(catalog, fleet, p, cls, cohort.band, g.objects, g.bytes)
            if best is None or monthly < best.monthly:
                best_i, best = i, replace(o, storage_class=cls, monthly=monthly)
    if best_i is None:
        return decisions
    out = list(decisions)
    g, o = out[best_i]
    if best.provider_id == g.provider_id and best.storage_class == g.storage_class:
        best = replace(best, one_off=Decimal(0))
    out[best_i] = (g, best)
    return out
