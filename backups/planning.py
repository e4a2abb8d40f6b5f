"""Planning a backup round: the Replica rows each asset still needs (routing over the database's state), and
what each asset lacks against the policy. Idempotent: planning twice plans nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.utils import timezone

from providers.models import Provider

from .layout import object_key
from .models import Asset, BackupJob, BackupPolicy, Replica, Wedding
from .placement import asset_traits, provider_states, rules_for, wedding_traits
from .protection import Copy, protection_gap
from .retention import lock_until, locking_provider_ids
from .routing import DISABLED, route
from .uploads import replica_is_current

UNAVAILABLE = (Provider.Status.DOWN, DISABLED)


@dataclass
class RoundPlan:
    uploads: int
    bytes: int
    infeasible: dict[str, str]  # relative path -> why


def plan_round(job: BackupJob) -> RoundPlan:
    """Create or refresh the Replica rows each asset still needs. Idempotent."""
    return plan_assets(job, job.wedding.assets.filter(missing_since__isnull=True))


def plan_assets(job: BackupJob, assets) -> RoundPlan:
    """``plan_round`` for some of the wedding's assets (a queryset): the placements they still need."""
    wedding = job.wedding
    policy = BackupPolicy.default()
    rules = rules_for(wedding, policy)
    plan_rules = policy.for_plan(wedding.plan)
    encrypt = bool(plan_rules["client_side_encryption"])
    locking = locking_provider_ids()
    locked_until = lock_until(wedding=wedding, retention_days=plan_rules["retention_days"])
    traits = wedding_traits(wedding)
    states = provider_states()
    by_id = {s.id: s for s in states}
    # The plan we would make with every provider up: copies outside it are temporary (failover) copies.
    all_up = [replace(s, accepts_work=True, status=Provider.Status.ACTIVE) if s.status == Provider.Status.DOWN else s
              for s in states]
    outage = any(s.status == Provider.Status.DOWN for s in states)
    uploads, total, infeasible = 0, 0, {}
    new: list[Replica] = []
    for asset in assets.prefetch_related("replicas"):
        replicas = {r.provider_id: r for r in asset.replicas.all()}
        current = frozenset(pid for pid, r in replicas.items() if replica_is_current(r, asset))
        # Once every provider is up, temporary (failover) copies no longer count as keepers, so the
        # preferred placement is restored; the finisher then prunes them where policy allows.
        keep = current if outage else frozenset(pid for pid in current if not replicas[pid].temporary)
        # Providers that failed this asset for good are left out; transient failures are retried.
        usable = [s for s in states if not (s.id in replicas and replicas[s.id].permanent_failure)]
        plan = route(traits, asset_traits(asset), rules, usable, keep=keep)
        if not plan.feasible:
            infeasible[asset.relative_path] = plan.problem
            continue
        preferred = set(route(traits, asset_traits(asset), rules, all_up, keep=keep).provider_ids) if outage else None
        for placement in plan.placements:
            if placement.provider_id in current:
                held = replicas[placement.provider_id]
                if held.temporary and not outage:  # chosen again on merit: no longer temporary
                    Replica.objects.filter(pk=held.pk).update(temporary=False)
                continue
            r = replicas.get(placement.provider_id)
            temporary = preferred is not None and placement.provider_id not in preferred
            reason = f"{placement.reason} (temporary copy while a provider is down)" if temporary else placement.reason
            fields = {"object_key": object_key(asset), "storage_class": placement.storage_class,
                      "region": by_id[placement.provider_id].region, "reason": reason, "temporary": temporary,
                      "encrypted": encrypt,
                      "retain_until": locked_until if placement.provider_id in locking else None}
            if r is None:
                new.append(Replica(asset=asset, provider_id=placement.provider_id, status=Replica.Status.PLANNED,
                                   **fields))
            else:
                Replica.objects.filter(pk=r.pk).update(status=Replica.Status.PLANNED, permanent_failure=False,
                                                       **fields)
            uploads += 1
            total += asset.size
    # New rows in few INSERTs (one per asset cost ~1 s for a 400-photo wedding, all before the first upload).
    # A row another planner made meanwhile (a batch re-planning for an outage while the failover job's round
    # plans the same wedding) is kept, not an error: the uploaders re-read the rows.
    Replica.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    return RoundPlan(uploads, total, infeasible)


def copy_of(replica: Replica, asset: Asset, state) -> Copy:
    return Copy(
        replica.provider_id, state.kind, state.zone, replica.status == Replica.Status.VERIFIED,
        replica.sha256 == asset.sha256, state.restore_hours.get(replica.storage_class, 0),
        available=state.status not in UNAVAILABLE,
    )


def asset_gaps(wedding: Wedding, *, asset_ids: list[int] | None = None) -> dict[int, str]:
    """Asset id -> what it lacks, for every asset of the wedding (or these of its assets) below policy (one
    query for replicas)."""
    rules = rules_for(wedding)
    states = {s.id: s for s in provider_states()}
    gaps = {}
    assets = wedding.assets.filter(missing_since__isnull=True).prefetch_related("replicas")
    if asset_ids is not None:
        assets = assets.filter(pk__in=asset_ids)
    for asset in assets:
        copies = [copy_of(r, asset, states[r.provider_id]) for r in asset.replicas.all()]
        gap = protection_gap(copies, rules, wedding.residency_zone)
        if gap:
            gaps[asset.pk] = gap
    return gaps


def assets_protected_mark(*, wedding: Wedding, asset_ids: list[int] | None = None,
                          gaps: dict[int, str] | None = None) -> int:
    """Stamp ``protected_at`` on the wedding's (or these) current assets that meet the policy and have no stamp
    yet; ``gaps`` (from ``asset_gaps``) when the caller already has them. Returns how many were stamped."""
    unstamped = wedding.assets.filter(missing_since__isnull=True, protected_at__isnull=True)
    if asset_ids is not None:
        unstamped = unstamped.filter(pk__in=asset_ids)
    ids = list(unstamped.values_list("pk", flat=True))
    if not ids:
        return 0
    if gaps is None:
        gaps = asset_gaps(wedding, asset_ids=ids)
    done = [pk for pk in ids if pk not in gaps]
    return Asset.objects.filter(pk__in=done, protected_at__isnull=True).update(protected_at=timezone.now())
