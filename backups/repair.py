"""After a failover: remove the temporary copies made on alternates, only where the policy holds without them.

Copy, verify, then delete: nothing is deleted while any preferred (non-temporary) copy of the asset is
not verified and current, nor while a provider holding one is down, and never when the remaining
copies would leave a protection gap.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from providers.backends.base import ProviderError
from providers.models import Provider

from .deletion import DeleteRefused, manifest_delete, replica_delete
from .layout import manifest_key
from .manifest import manifests_write
from .models import Replica, Wedding
from .placement import provider_states, rules_for
from .planning import copy_of
from .protection import protection_gap
from .uploads import replica_is_current

log = logging.getLogger(__name__)
GONE = (Replica.Status.DELETED,)


def repair_prune_temporaries(*, wedding: Wedding) -> int:
    """Delete the wedding's temporary copies the policy no longer needs. Returns how many were removed."""
    rules = rules_for(wedding)
    states = {s.id: s for s in provider_states()}
    pruned_on: set[int] = set()
    pruned = 0
    for asset in wedding.assets.prefetch_related("replicas__provider"):
        replicas = [r for r in asset.replicas.all() if r.status not in GONE]
        temporaries = [r for r in replicas if r.temporary and r.status in (Replica.Status.VERIFIED,
                                                                           Replica.Status.DELETING)]
        if not temporaries:
            continue
        preferred = [r for r in replicas if not r.temporary]
        if not preferred or not all(replica_is_current(r, asset) and states[r.provider_id].accepts_work
                                    for r in preferred):
            continue
        keep = list(replicas)
        for temp in temporaries:
            rest = [r for r in keep if r.pk != temp.pk]
            copies = [copy_of(r, asset, states[r.provider_id]) for r in rest]
            if protection_gap(copies, rules, wedding.residency_zone):
                continue
            if _delete(temp, states):
                keep = rest
                pruned += 1
                pruned_on.add(temp.provider_id)
    if pruned:
        _refresh_manifests(wedding, pruned_on, manifests_write)
    return pruned


def _delete(replica: Replica, states: dict) -> bool:
    try:
        replica_delete(replica=replica, reason="temporary copy made during a failover, no longer needed",
                       states=states)
    except (ProviderError, DeleteRefused) as exc:
        Replica.objects.filter(pk=replica.pk).update(last_error=f"temporary copy not removed: {exc}"[:4000],
                                                     updated=timezone.now())
        log.warning("could not remove temporary copy %s on %s: %s", replica.object_key, replica.provider.name, exc)
        return False
    return True


def _refresh_manifests(wedding: Wedding, pruned_on: set[int], manifests_write) -> None:
    """Rewrite the manifests; a provider left with nothing of the wedding loses its stale one."""
    for error in manifests_write(wedding=wedding):
        log.warning("after pruning %s: %s", wedding.slug, error)
    holding = Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED,
                                     provider_id__in=pruned_on).values("provider_id")
    emptied = Provider.objects.filter(pk__in=pruned_on).exclude(pk__in=holding)
    for provider in emptied:
        try:
            manifest_delete(provider=provider, wedding=wedding, key=manifest_key(wedding))
        except (ProviderError, DeleteRefused) as exc:
            log.warning("stale manifest of %s left on %s: %s", wedding.slug, provider.name, exc)
