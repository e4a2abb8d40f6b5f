"""When a provider is lost, are the other copies really there? The brief's ``validateExistingBackups``: for a
wedding-day-critical wedding, every verified copy on the remaining providers of each file that had a copy on the
lost one is checked at once (HEAD: present, size, provider checksum), before its failover round plans. A copy
that fails is marked failed, so the round (on the ``critical`` queue, ahead of other work) replaces it from a
good copy; a provider that cannot be reached is reported, not condemned."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from providers.backends import backend_for
from providers.backends.base import ProviderError

from .damage import replica_mark_damaged
from .integrity import replica_check
from .models import Replica, Wedding

log = logging.getLogger(__name__)
HEAD_THREADS = 8


def survivors_validate(*, wedding: Wedding, lost_provider_id: int) -> dict:
    """Check the surviving verified copies of the wedding's files that had a copy on the lost provider.
    Returns {"checked", "ok", "damaged": ["provider: key: why"], "unreachable": [...]}."""
    had_copy = Replica.objects.filter(provider_id=lost_provider_id, asset__wedding=wedding,
                                      asset__missing_since__isnull=True).values("asset_id")
    survivors = list(Replica.objects.filter(asset_id__in=had_copy, status=Replica.Status.VERIFIED)
                     .exclude(provider_id=lost_provider_id).select_related("provider", "asset__wedding"))
    backends = {r.provider_id: backend_for(r.provider) for r in survivors}

    def check(replica: Replica) -> tuple[Replica, str, str]:
        try:
            return replica, replica_check(replica, backends[replica.provider_id], deep=False), ""
        except ProviderError as exc:
            return replica, "", str(exc)

    report: dict = {"checked": len(survivors), "ok": 0, "damaged": [], "unreachable": []}
    with ThreadPoolExecutor(max_workers=HEAD_THREADS, thread_name_prefix="survivor-head") as pool:
        results = list(pool.map(check, survivors))
    for replica, problem, error in results:
        where = f"{replica.provider.name}: {replica.object_key}"
        if error:
            report["unreachable"].append(f"{where}: {error}")
        elif problem and replica_mark_damaged(replica=replica, why=f"failover check: {problem}"):
            report["damaged"].append(f"{where}: {problem}")
        else:
            report["ok"] += 1
    if report["damaged"]:
        log.warning("failover check of %s: %d surviving copies damaged", wedding.slug, len(report["damaged"]))
    return report
