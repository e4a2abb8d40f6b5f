"""The backups app's jobs: each ``*_start`` creates a BackupJob row and enqueues its RQ entry once the
transaction commits; each RQ entry takes primary keys and calls one function. The one place RQ entry points
are defined, referenced as functions (never by dotted strings).

A backup runs in rounds: a round plans what is missing (``planning``), enqueues upload batches
(``batches``) and a finisher that runs when every batch has ended, however it ended. The finisher checks the
policy for every asset; anything still short is planned again (failed providers avoided) in the next round,
up to MAX_ROUNDS, then the job completes (``completion``). So a worker killed mid-batch, a provider that went
down, or a revoked key all end the same way: the next round repairs it.

Every entry is idempotent, and enqueued with retries: a job whose worker was killed is abandoned, and rq's
registry cleanup re-queues it instead of failing it for good (nothing depends on rounds and finishers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import django_rq
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rq import Retry
from rq.job import Dependency, Job

from .audit import audit_record
from .batches import batch_upload, batched
from .completion import backup_complete
from .ingest import import_run
from .models import Asset, BackupJob, Plan, Replica, Wedding
from .planning import asset_gaps, assets_protected_mark, plan_round
from .restore import restore_run, zip_run, zip_too_big
from .retention import retention_renew
from .survivors import survivors_validate
from .systemdb import system_db_backup
from .verify import wedding_verify

MAX_ROUNDS = 4
ABANDONED_RETRIES = 3


def _enqueue(queue: str, func: Callable, *args, **kwargs) -> Job:
    return django_rq.get_queue(queue).enqueue(func, *args, job_timeout=settings.RQ_QUEUES[queue]["DEFAULT_TIMEOUT"],
                                              retry=Retry(max=ABANDONED_RETRIES), **kwargs)


def _track(job_id: int, rq_job: Job | None) -> None:
    """The RQ job that will carry the backup on (its next round, or the round's finisher): the stuck-job check
    asks RQ about it, so a job whose worker died with no retry left is reported at once, not hours later."""
    if rq_job is not None:  # None when django-rq defers the enqueue to the end of the request
        BackupJob.objects.filter(pk=job_id).update(rq_job_id=rq_job.id)


# -- backup ---------------------------------------------------------------------------------------------------
def backup_start(*, wedding: Wedding, requested_by=None, kind: str = BackupJob.Kind.BACKUP,
                 validate_survivors_of: int | None = None) -> BackupJob:
    """Create a backup (or repair, or failover) job and enqueue its first round once the transaction commits.
    ``validate_survivors_of``: a lost provider's id; the first round checks the other copies first."""
    queue = "critical" if wedding.wedding_day_critical else "default"
    params = {"validate_survivors_of": validate_survivors_of} if validate_survivors_of else {}
    job = BackupJob.objects.create(wedding=wedding, kind=kind, queue=queue, requested_by=requested_by, params=params)
    transaction.on_commit(lambda: _track(job.pk, _enqueue(queue, backup_round, job.pk, 1)))
    return job


def backup_round(job_id: int, round_no: int) -> None:
    """RQ entry: plan one round and fan it out; the finisher runs after every batch, failed or not."""
    job = BackupJob.objects.select_related("wedding").get(pk=job_id)
    if job.status == BackupJob.Status.CANCELLED:
        return
    if job.started_at is None:
        BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.RUNNING, started_at=timezone.now())
    lost = job.params.get("validate_survivors_of")
    if lost and "survivors" not in job.params:  # once per job: a retried round does not check again
        job.params = {**job.params, "survivors": survivors_validate(wedding=job.wedding, lost_provider_id=lost)}
        BackupJob.objects.filter(pk=job.pk).update(params=job.params)
    plan = plan_round(job)
    pending = list(
        Asset.objects.filter(wedding=job.wedding, missing_since__isnull=True,
                             replicas__status=Replica.Status.PLANNED)
        .distinct().order_by("pk").values_list("pk", "size")
    )
    BackupJob.objects.filter(pk=job.pk).update(
        files_planned=F("files_planned") + len(pending), bytes_planned=F("bytes_planned") + plan.bytes,
        params={**job.params, "round": round_no, "infeasible": plan.infeasible},
    )
    batches = [_enqueue(job.queue, upload_batch, job.pk, ids) for ids in batched(pending)]
    depends = Dependency(jobs=batches, allow_failure=True) if batches else None
    _track(job.pk, _enqueue(job.queue, backup_finish, job.pk, round_no, depends_on=depends))


def upload_batch(job_id: int, asset_ids: list[int]) -> dict:
    """RQ entry: upload every planned replica of these assets."""
    job = BackupJob.objects.select_related("wedding").get(pk=job_id)
    if job.status == BackupJob.Status.CANCELLED:
        return {"cancelled": True}
    result = batch_upload(job=job, asset_ids=asset_ids)
    assets_protected_mark(wedding=job.wedding, asset_ids=asset_ids)  # the RPO clock stops as soon as it can
    return result


def backup_finish(job_id: int, round_no: int) -> str:
    """RQ entry: after a round, either plan the next round for what is short or complete the job."""
    job = BackupJob.objects.select_related("wedding").get(pk=job_id)
    if job.status == BackupJob.Status.CANCELLED:
        return job.status
    gaps = asset_gaps(job.wedding)
    assets_protected_mark(wedding=job.wedding, gaps=gaps)
    # Files that arrived after this job was asked for are the next job's: on a wedding day's steady stream they
    # must not keep this one going round after round, nor make it partial for files it was never asked to take.
    later = set(Asset.objects.filter(pk__in=gaps, seen_complete_at__gt=job.created).values_list("pk", flat=True))
    gaps = {pk: gap for pk, gap in gaps.items() if pk not in later}
    if gaps and round_no < MAX_ROUNDS:
        _track(job.pk, _enqueue(job.queue, backup_round, job.pk, round_no + 1))
        return "next round"
    return backup_complete(job=job, gaps=gaps, rounds=round_no)


# -- import -----------------------------------------------------------------------------------------------------
def import_start(*, path: str, couple: str, date: dt.date, country: str, city: str = "", plan: str = Plan.STANDARD,
                 requires_ml_analysis: bool = False, requested_by=None) -> BackupJob:
    """Queue an import (console): hashing a large folder takes minutes, so a worker does it."""
    params = {"path": str(path), "couple": couple, "date": date.isoformat(), "country": country, "city": city,
              "plan": plan, "requires_ml_analysis": requires_ml_analysis}
    job = BackupJob.objects.create(kind=BackupJob.Kind.IMPORT, queue="default", params=params,
                                   requested_by=requested_by)
    audit_record(by=requested_by, action="wedding.import", target=f"path:{path}", details={"job": job.pk, **params})
    transaction.on_commit(lambda: django_rq.get_queue("default").enqueue(import_job, job.pk))
    return job


def import_job(job_id: int) -> None:
    """RQ entry: the import a console form asked for."""
    import_run(job=BackupJob.objects.get(pk=job_id))


# -- verify -----------------------------------------------------------------------------------------------------
def verify_start(*, wedding: Wedding, deep: bool = False, requested_by=None) -> BackupJob:
    """Enqueue a verify job (console button)."""
    job = BackupJob.objects.create(wedding=wedding, kind=BackupJob.Kind.VERIFY, queue="bulk",
                                   params={"deep": deep}, requested_by=requested_by)
    transaction.on_commit(lambda: django_rq.get_queue("bulk").enqueue(verify_job, job.pk))
    return job


def repair_on_damage(*, wedding: Wedding, requested_by=None, **_) -> BackupJob:
    """Receiver of ``signals.copies_damaged`` (connected in ``BackupsConfig.ready``): start the repair."""
    with transaction.atomic():
        return backup_start(wedding=wedding, kind=BackupJob.Kind.REPAIR, requested_by=requested_by)


def verify_job(job_id: int) -> None:
    """RQ entry: verify (and repair) the job's wedding; the report is the job's result."""
    job = BackupJob.objects.select_related("wedding").get(pk=job_id)
    BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.RUNNING, started_at=timezone.now())
    report = wedding_verify(wedding=job.wedding, deep=bool(job.params.get("deep")), requested_by=job.requested_by)
    status = BackupJob.Status.SUCCEEDED if not (report.mismatched or report.unreachable) else BackupJob.Status.PARTIAL
    BackupJob.objects.filter(pk=job.pk).update(
        status=status, finished_at=timezone.now(), files_planned=report.checked, files_done=report.ok,
        files_failed=len(report.mismatched), result=report.as_dict(),
        error_summary="; ".join(report.mismatched + report.unreachable)[:4000],
    )


# -- restore ----------------------------------------------------------------------------------------------------
def restore_start(*, wedding: Wedding, to: str, only: str = "", requested_by=None) -> BackupJob:
    """Queue a restore of the wedding into a folder on the worker's machine (the console's restore to a path)."""
    job = BackupJob.objects.create(wedding=wedding, kind=BackupJob.Kind.RESTORE, params={"to": to, "only": only},
                                   requested_by=requested_by)
    audit_record(by=requested_by, action="wedding.restore", target=f"wedding:{wedding.slug}",
                 details={"job": job.pk, "to": to, "only": only})
    transaction.on_commit(lambda: django_rq.get_queue(job.queue).enqueue(restore_job, job.pk))
    return job


def zip_start(*, wedding: Wedding, requested_by=None) -> BackupJob:
    """Queue a zip of the wedding for download (console); ValueError when it is too big for one."""
    problem = zip_too_big(wedding)
    if problem:
        raise ValueError(problem)
    job = BackupJob.objects.create(wedding=wedding, kind=BackupJob.Kind.RESTORE, params={"zip": True},
                                   requested_by=requested_by)
    transaction.on_commit(lambda: django_rq.get_queue(job.queue).enqueue(zip_job, job.pk))
    return job


def zip_job(job_id: int) -> str:
    """RQ entry: build the job's zip."""
    return zip_run(job=BackupJob.objects.select_related("wedding").get(pk=job_id))


def restore_job(job_id: int) -> str:
    """RQ entry: restore the job's wedding into its folder."""
    return restore_run(job=BackupJob.objects.select_related("wedding").get(pk=job_id))


# -- retention ----------------------------------------------------------------------------------------------------
def retention_renew_job() -> dict:
    """RQ entry (daily, console.cron): extend the Object Lock of copies whose wedding's retention still runs."""
    return retention_renew()


# -- WedBackup's own database ----------------------------------------------------------------------------------------
def system_db_backup_job() -> dict:
    """RQ entry (daily, console.cron): dump, encrypt and store WedBackup's own database on two providers."""
    return system_db_backup()
