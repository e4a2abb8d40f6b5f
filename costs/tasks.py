"""RQ entry points: take primary keys, fetch the rows, call one function."""

from __future__ import annotations

from backups.models import BackupJob

from .apply import optimization_crashed, optimization_execute
from .models import Optimization


def optimization_run(optimization_id: int, job_id: int) -> str:
    optimization = Optimization.objects.select_related("wedding").get(pk=optimization_id)
    job = BackupJob.objects.get(pk=job_id)
    if optimization.job_id != job.pk:  # a newer apply took over (this job's worker was presumed dead)
        BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.CANCELLED)
        return "superseded"
    try:
        return optimization_execute(optimization=optimization, job=job)
    except Exception as exc:
        optimization_crashed(optimization=optimization, job=job, error=exc)
        raise


def optimizations_refresh_run(wedding_id: int | None = None) -> int:
    from backups.models import Wedding

    from .proposals import optimizations_refresh

    wedding = None if wedding_id is None else Wedding.objects.get(pk=wedding_id)
    return len(optimizations_refresh(wedding=wedding))
