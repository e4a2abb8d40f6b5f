"""Console pages for jobs: queues, running and failed jobs, retry, and the progress JSON the pages poll."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render

from wedbackup.web import staff_post, staff_required

from . import queries
from .models import BackupJob

RETRYABLE = (BackupJob.Kind.BACKUP, BackupJob.Kind.REPAIR, BackupJob.Kind.VERIFY)


@staff_required
def job_list(request: HttpRequest) -> HttpResponse:
    return render(request, "backups/jobs.html", queries.jobs_page())


@staff_required
def job_json(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(queries.job_status(get_object_or_404(BackupJob, pk=pk)))


@staff_post
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Run the job's action again for its wedding (the engine is idempotent: done work is skipped)."""
    job = get_object_or_404(BackupJob.objects.select_related("wedding"), pk=pk)
    if job.wedding is None or job.kind not in RETRYABLE:
        messages.error(request, f"A {job.kind} job without a wedding cannot be retried from here.")
        return redirect("backups:jobs")
    if job.kind == BackupJob.Kind.VERIFY:
        from .verify import verify_start

        new = verify_start(wedding=job.wedding, requested_by=request.user)
    else:
        from .backup import backup_start

        new = backup_start(wedding=job.wedding, requested_by=request.user, kind=job.kind)
    messages.success(request, f"Job #{new.pk} queued to retry #{job.pk}.")
    return redirect("backups:jobs")
