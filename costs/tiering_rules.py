"""The I/O side of tiering with lifecycle rules: plan them from the database, read ours back from the providers,
install them (audited). The planning itself is ``costs.tiering`` (pure)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from django.utils import timezone

from backups.audit import audit_record
from backups.layout import ROOT
from backups.models import Replica
from costs.catalog import Catalog
from providers.backends import backend_class, backend_for
from providers.backends.base import ProviderError
from providers.backends.base_lifecycle import LifecycleRule
from providers.models import Provider

from .costing import fleet_state, rules_by_plan
from .optimizer import optimise
from .tiering import RULE_REQUESTS, TieringPlan, tiering_plan, worker_requests
from .versions import current_catalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Installed:
    provider: Provider
    rules: tuple[LifecycleRule, ...]  # ours only
    others: int  # rules of the bucket that are not ours (left alone)
    error: str = ""


def tiering_plan_compute(*, catalog: Catalog | None = None) -> tuple[TieringPlan, dict]:
    """The rules to install for the fleet as it is, and the requests our workers make with and without them."""
    catalog = catalog or current_catalog()
    fleet = fleet_state(catalog=catalog)
    rules = rules_by_plan()
    plan = tiering_plan(fleet, catalog, rules)
    return plan, tiering_report(plan, per_object=optimise(fleet, catalog, rules), providers=fleet.providers)


def _rule_providers() -> list[Provider]:
    return [p for p in Provider.objects.filter(enabled=True).order_by("pk") if backend_class(p.kind).lifecycle_rules]


def tiering_rules_read(*, providers: list[Provider] | None = None) -> list[Installed]:
    """Our rules as each provider that declares lifecycle rules holds them now (one request per provider)."""
    out = []
    for provider in _rule_providers() if providers is None else providers:
        try:
            rules = backend_for(provider).lifecycle_get()
        except ProviderError as exc:
            log.warning("cannot read the lifecycle rules of %s: %s", provider.name, exc)
            out.append(Installed(provider, (), 0, str(exc)))
            continue
        out.append(Installed(provider, tuple(r for r in rules if r.ours), sum(not r.ours for r in rules)))
    return out


def tiering_rules_installed() -> dict[int, tuple[LifecycleRule, ...]]:
    """Provider id -> our rules in place (providers without any, or unreadable now, left out)."""
    return {i.provider.pk: i.rules for i in tiering_rules_read() if i.rules}


def tiering_rules_install(*, plan: TieringPlan | None = None, by=None, remove: bool = False) -> list[dict]:
    """Make our rules on every provider that declares lifecycle rules what the plan says (none where the plan has
    none, or everywhere with ``remove``); each change audited. Returns one row per provider."""
    plan = plan if plan is not None or remove else tiering_plan_compute()[0]
    wanted = {} if remove else {r.provider_id: r for r in plan.rules}
    rows = []
    for provider in _rule_providers():
        chosen = wanted.get(provider.pk)
        rules = list(chosen.rules) if chosen else []
        try:
            changed = backend_for(provider).lifecycle_put(rules)
        except ProviderError as exc:
            rows.append({"provider": provider.name, "changed": False, "error": str(exc)})
            continue
        row = {"provider": provider.name, "changed": changed, "rules": [_describe(r) for r in rules],
               "objects": chosen.objects if chosen else 0,
               "transition_cost": str(chosen.transition_cost) if chosen else "0",
               "monthly_saving": str(chosen.monthly_saving) if chosen else "0"}
        if changed:
            audit_record(by=by, action="lifecycle_rules.install" if rules else "lifecycle_rules.remove",
                         target=f"provider:{provider.pk}", details=row)
        rows.append(row)
    return rows


def _describe(rule: LifecycleRule) -> dict:
    return {"id": rule.id, "prefix": rule.prefix, "min_size": rule.min_size,
            "transitions": [{"days": d, "storage_class": c} for d, c in rule.transitions]}


def tiering_report(plan: TieringPlan, *, per_object: list, providers: dict) -> dict:
    """Requests our workers make for the fleet: every class change per object, or rules plus what is left."""
    with_rules = worker_requests(plan.proposals, providers) + RULE_REQUESTS * len(plan.rules)
    return {"per_object_requests": worker_requests(per_object, providers), "with_rules_requests": with_rules,
            "provider_transitions": sum(r.objects for r in plan.rules),
            "provider_transition_cost": sum((r.transition_cost for r in plan.rules), 0),
            "rules": [{"provider": providers[r.provider_id].name, "rules": [_describe(x) for x in r.rules],
                       "objects": r.objects, "transition_cost": r.transition_cost,
                       "monthly_saving": r.monthly_saving} for r in plan.rules]}


SYNC_BATCH = 1000


def tiering_classes_sync(*, provider: Provider, by=None) -> dict:
    """Record the class each of the provider's copies is in now: its rules move objects without telling us, and
    the cost model prices the class on the replica row. One LIST per 1,000 objects (not a HEAD per object); only
    ``storage_class`` (and ``updated``) of verified replicas whose object reports another class is changed."""
    backend = backend_for(provider)
    seen = changed = 0
    batch: dict[str, str] = {}

    def flush() -> int:
        moved: dict[str, list[int]] = defaultdict(list)
        rows = Replica.objects.filter(provider=provider, status=Replica.Status.VERIFIED, object_key__in=list(batch))
        for pk, key, cls in rows.values_list("pk", "object_key", "storage_class"):
            if batch[key] and batch[key] != cls:
                moved[batch[key]].append(pk)
        now = timezone.now()
        for cls, pks in moved.items():
            Replica.objects.filter(pk__in=pks).update(storage_class=cls, updated=now)
        batch.clear()
        return sum(len(p) for p in moved.values())

    for info in backend.list(f"{ROOT}/"):
        seen += 1
        batch[info.key] = info.storage_class or ""
        if len(batch) >= SYNC_BATCH:
            changed += flush()
    changed += flush() if batch else 0
    row = {"provider": provider.name, "objects": seen, "changed": changed}
    if changed:
        audit_record(by=by, action="lifecycle_rules.sync", target=f"provider:{provider.pk}", details=row)
    return row


def tiering_classes_sync_all(*, by=None) -> list[dict]:
    """``tiering_classes_sync`` on every provider holding our rules now."""
    return [tiering_classes_sync(provider=i.provider, by=by) for i in tiering_rules_read() if i.rules]
