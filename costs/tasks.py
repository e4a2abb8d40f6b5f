"""The costs app's jobs: ``optimization_apply`` enqueues a proposal's apply (on commit), ``optimization_run`` is
its RQ entry. The one place the app's RQ entry points are defined."""

from __future__ import annotations

import django_rq
from django.conf import settings
from django.db import transaction

from backups.audit import audit_record
from backups.models import BackupJob

from .apply import APPLIABLE, QUEUE, optimization_crashed, optimization_execute
from .models import Optimization


def optimization_apply(*, optimization: Optimization, by=None) -> BackupJob | None:
    """Enqueue the proposal's apply job; None when there is nothing to do (applied, running, or advisory)."""
    with transaction.atomic():
        opt = Optimization.objects.select_for_update().get(pk=optimization.pk)
        if opt.status in (Optimization.Status.APPLIED, Optimization.Status.SUPERSEDED):
            return None
        if opt.status == Optimization.Status.APPLYING and opt.job is not None and opt.job.is_active:
            return None  # already queued or running; a run whose worker died may be started again
        if opt.kind not in APPLIABLE:
            Optimization.objects.filter(pk=opt.pk).update(
                error=f"{opt.get_kind_display()} is advisory: restores cannot read compressed or shared objects "
                      "yet, so it is not applied automatically")
            return None
        job = BackupJob.objects.create(wedding=opt.wedding, kind=BackupJob.Kind.OPTIMISE, queue=QUEUE,
                                       requested_by=by, params={"optimization": opt.pk})
        Optimization.objects.filter(pk=opt.pk).update(status=Optimization.Status.APPLYING, job=job, applied_by=by,
                                                      error="")
        audit_record(by=by, action="optimization.apply", target=f"optimization:{opt.pk}",
                     details={"job": job.pk, "kind": opt.kind, "summary": opt.summary[:500]})
        transaction.on_commit(lambda: django_rq.get_queue(QUEUE).enqueue(
            optimization_run, opt.pk, job.pk, job_timeout=settings.RQ_QUEUES[QUEUE]["DEFAULT_TIMEOUT"]))
    optimization.refresh_from_db()
    return job


def optimizations_apply_all(*, by=None) -> list[BackupJob]:
    jobs = [optimization_apply(optimization=o, by=by)
            for o in Optimization.objects.filter(status=Optimization.Status.PROPOSED, kind__in=APPLIABLE)]
    return [j for j in jobs if j is not None]


def optimization_run(optimization_id: int, job_id: int) -> str:
    """RQ entry: run the proposal's steps, unless a newer apply took over."""
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
