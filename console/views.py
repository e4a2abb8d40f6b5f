"""Console pages for the whole fleet: the overview, "Refresh now", and jobs (queues, progress, retry)."""

from __future__ import annotations

import django_rq
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from backups import charts
from backups import queries as backup_queries
from backups.models import BackupJob
from backups.restore import zip_download
from backups.tasks import backup_start, verify_start
from backups.zipdownload import zip_response
from costs.charts import cost_history_figure, now_vs_optimised_figure
from wedbackup.web import action, page

from . import queries
from .tasks import snapshots_refresh as snapshots_refresh_job


@page("backups.view_wedding")
def overview(request: HttpRequest) -> HttpResponse:
    context = queries.overview()
    context["charts"] = [
        {"id": "chart-protection", "figure": charts.protection_figure(context["summary"])},
        {"id": "chart-replicas", "figure": charts.replicas_per_provider_figure(context["providers"])},
    ]
    if context["costs"]:
        context["charts"].append({"id": "chart-costs", "figure": now_vs_optimised_figure(context["costs"])})
    if len(context["cost_history"]) >= 2:
        context["charts"].append({"id": "chart-history", "figure": cost_history_figure(context["cost_history"])})
    return render(request, "backups/overview.html", context)


@action("backups.backup_wedding")
def snapshots_refresh(request: HttpRequest) -> HttpResponse:
    """Recompute the stored protection and cost figures now, in a worker."""
    queue = django_rq.get_queue("bulk", commit_mode="auto")  # nothing to wait for: no rows are written here
    queue.enqueue(snapshots_refresh_job, costs=True, job_timeout=3600)
    messages.success(request, "Refreshing protection and cost figures; reload in a minute.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("backups:overview")
    return redirect(target)


# Jobs a person may run again from the jobs page (the engine is idempotent: done work is skipped).
RETRYABLE = (BackupJob.Kind.BACKUP, BackupJob.Kind.REPAIR, BackupJob.Kind.VERIFY)


@page("backups.view_backupjob")
def job_list(request: HttpRequest) -> HttpResponse:
    return render(request, "backups/jobs.html", backup_queries.jobs_page())


@page("backups.view_backupjob")
def job_json(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(backup_queries.job_status(get_object_or_404(BackupJob, pk=pk)))


@action("backups.backup_wedding")
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Run the job's action again for its wedding (the engine is idempotent: done work is skipped)."""
    job = get_object_or_404(BackupJob.objects.select_related("wedding"), pk=pk)
    if job.wedding is None or job.kind not in RETRYABLE:
        messages.error(request, f"A {job.kind} job without a wedding cannot be retried from here.")
        return redirect("backups:jobs")
    if job.kind == BackupJob.Kind.VERIFY:
        new = verify_start(wedding=job.wedding, requested_by=request.user)
    else:
        new = backup_start(wedding=job.wedding, requested_by=request.user, kind=job.kind)
    messages.success(request, f"Job #{new.pk} queued to retry #{job.pk}.")
    return redirect("backups:jobs")


@page("backups.view_auditevent")
def audit_list(request: HttpRequest) -> HttpResponse:
    """Who did what, when, to what: imports, restores, downloads, applies, deletes, erasures, failovers."""
    filters = {key: request.GET.get(key, "").strip()[:100] for key in ("action", "actor", "target")}
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "backups/audit.html", {
        "page": backup_queries.audit_page(page=request.GET.get("page", 1), **filters), "filters": filters,
        "query": query.urlencode()})


@page("backups.restore_wedding")
def job_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The zip a restore job built (once: it is removed when sent)."""
    job = get_object_or_404(BackupJob.objects.select_related("wedding"), pk=pk)
    path = zip_download(job=job, by=request.user)
    if path is None:
        raise Http404("No zip for this job (not ready, failed, or downloaded already).")
    return zip_response(path, f"{job.wedding.slug}.zip", failed=int(job.result.get("failed") or 0))
