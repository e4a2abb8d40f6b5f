"""Apply a proposal: run its steps (costs.moves: copy, verify, then delete) and record the result. Enqueued by
``costs.tasks.optimization_apply``."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from backups.manifest import manifests_write
from backups.models import BackupJob, Replica, Wedding
from backups.placement import provider_states, rules_for
from backups.snapshots import wedding_refresh
from providers.backends.base import ProviderError

from .costing import costs_by_group, fleet_state
from .models import Optimization
from .moves import PolicyWouldBreak, Steps
from .snapshots import cost_snapshot_soon
from .versions import current_catalog

log = logging.getLogger(__name__)
QUEUE = "bulk"
APPLIABLE = (Optimization.Kind.LIFECYCLE, Optimization.Kind.PROVIDER_MIX)
#: Sent after every replica step (optimization, replica, ok): tests check the policy between steps.
optimization_step = Signal()


def wedding_monthly(wedding: Wedding) -> Decimal:
    catalog = current_catalog()
    return sum(costs_by_group(catalog, fleet_state(catalog=catalog, wedding_ids=[wedding.pk])).values(), Decimal(0))


def _replicas(wedding: Wedding, change: dict):
    qs = Replica.objects.filter(asset__wedding=wedding, asset__kind=change["asset_kind"],
                                provider_id=change["provider"], status=Replica.Status.VERIFIED,
                                asset__size__gte=change.get("min_size") or 0)
    if change.get("max_size") is not None:
        qs = qs.filter(asset__size__lt=change["max_size"])
    if change["action"] == "change_class":
        qs = qs.exclude(storage_class=change["to_class"])
    return qs.exclude(asset__relative_path__endswith="MANIFEST.json").select_related("asset__wedding", "provider")


def optimization_execute(*, optimization: Optimization, job: BackupJob) -> str:
    """Run every step; idempotent (an applied proposal is left alone, done steps no longer match)."""
    if optimization.status == Optimization.Status.APPLIED:
        return optimization.status
    wedding = optimization.wedding
    BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.RUNNING, started_at=timezone.now())
    before = wedding_monthly(wedding)
    by = optimization.applied_by.get_username() if optimization.applied_by else "system"
    steps = Steps(rules_for(wedding), {s.id: s for s in provider_states()}, wedding.residency_zone, by=by)
    work = [(change, r) for change in optimization.changes for r in _replicas(wedding, change)]
    BackupJob.objects.filter(pk=job.pk).update(files_planned=len(work), bytes_planned=sum(r.size for _, r in work))
    errors: list[str] = []
    for change, replica in work:
        ok = _step(steps, change, replica, errors)
        BackupJob.objects.filter(pk=job.pk).update(
            files_done=F("files_done") + int(ok), files_failed=F("files_failed") + int(not ok),
            bytes_done=F("bytes_done") + (replica.size if ok else 0))
        optimization_step.send(sender=Optimization, optimization=optimization, replica=replica, ok=ok)
    if any(c["action"] == "move" for c in optimization.changes):
        errors += manifests_write(wedding=wedding)
    realised = before - wedding_monthly(wedding)
    failed = len(errors)
    status = Optimization.Status.APPLIED if not errors else (
        Optimization.Status.PARTIAL if failed < len(work) else Optimization.Status.FAILED)
    Optimization.objects.filter(pk=optimization.pk).update(
        status=status, realised_monthly_saving=realised, applied_at=timezone.now(), error="\n".join(errors)[:4000])
    wedding_refresh(wedding)
    cost_snapshot_soon()
    job_status = {Optimization.Status.APPLIED: BackupJob.Status.SUCCEEDED,
                  Optimization.Status.PARTIAL: BackupJob.Status.PARTIAL}.get(status, BackupJob.Status.FAILED)
    BackupJob.objects.filter(pk=job.pk).update(
        status=job_status, finished_at=timezone.now(), error_summary="; ".join(errors)[:4000],
        result={"steps": len(work), "failed": failed, "realised_monthly_saving": str(realised)})
    return status


def optimization_crashed(*, optimization: Optimization, job: BackupJob, error: BaseException) -> None:
    """An unexpected error: record it, so the proposal does not look as if it were still applying."""
    message = f"{type(error).__name__}: {error}"[:4000]
    Optimization.objects.filter(pk=optimization.pk).update(status=Optimization.Status.FAILED, error=message)
    BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.FAILED, finished_at=timezone.now(),
                                               error_summary=message)


def _step(steps: Steps, change: dict, replica: Replica, errors: list[str]) -> bool:
    try:
        if change["action"] == "change_class":
            steps.change_class(replica, change["to_class"])
        else:
            steps.move(replica, change["to_provider"], change["to_class"])
        return True
    except (ProviderError, PolicyWouldBreak, OSError) as exc:
        log.warning("optimisation step on %s failed: %s", replica, exc)
        errors.append(f"{replica.asset.relative_path} on {replica.provider.name}: {exc}")
        return False
