"""Console pages for weddings. Each view parses input, calls one function, renders."""

from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.http import content_disposition_header

from backups import charts, queries
from backups.fetch import FetchArchived, FetchError, asset_fetch
from backups.forms import ImportForm, RestoreForm
from backups.models import Asset, Plan, Wedding
from backups.rehydration import rehydration_request, rehydration_waiting
from backups.selection import SelectionError, selection_check, selection_limits, selection_zip
from backups.tasks import backup_start, import_start, restore_start, verify_start, zip_start
from backups.thumbnails import thumbnail_path
from providers.backends.base import ProviderError
from providers.residency import ZONES
from wedbackup.web import action, page

from . import queries as console_queries
from .timeline import wedding_next_runs, wedding_timeline

STATUSES = [("protected", "Protected"), ("at-risk", "At risk")]
SORTS = [("date", "Newest first"), ("oldest", "Oldest first"), ("couple", "Couple"), ("bytes", "Largest"),
         ("copies", "Fewest copies"), ("risk", "Most at risk")]


@page("backups.view_wedding")
def wedding_list(request: HttpRequest) -> HttpResponse:
    filters = {key: request.GET.get(key, "").strip()
               for key in ("q", "residency", "plan", "status", "since", "until", "sort")}
    page = queries.weddings_page(page=request.GET.get("page", 1), **filters)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "backups/wedding_list.html", {
        "page": page, "filters": filters, "query": query.urlencode(),
        "zones": ZONES, "plans": Plan.choices, "statuses": STATUSES, "import_form": ImportForm(), "sorts": SORTS,
    })


@action("backups.import_wedding")
def wedding_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
        return redirect("backups:weddings")
    job = import_start(requested_by=request.user, **form.cleaned_data)
    messages.success(request, f"Import job #{job.pk} queued for {form.cleaned_data['path']}.")
    return redirect("backups:jobs")


@page("backups.view_wedding")
def wedding_detail(request: HttpRequest, slug: str) -> HttpResponse:
    wedding = get_object_or_404(Wedding, slug=slug)
    context = console_queries.wedding_detail(wedding, replica_page=request.GET.get("page", 1),
                                             photo_page=request.GET.get("photos", 1))
    context["charts"] = [{"id": "chart-distribution", "figure": charts.distribution_figure(context["distribution"])}]
    context["restore_form"] = RestoreForm()
    context["timeline"] = wedding_timeline(wedding=wedding, audit=request.user.has_perm("backups.view_auditevent"))
    context["next_runs"] = wedding_next_runs(wedding=wedding)
    context.update(selection_limits())
    return render(request, "backups/wedding_detail.html", context)


@page("backups.view_wedding")
def wedding_timeline_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The wedding's whole story, a page at a time (``before``: the cursor the previous page ended on)."""
    wedding = get_object_or_404(Wedding, slug=slug)
    try:
        before = parse_datetime(request.GET.get("before", "").replace(" ", "+"))  # "+" arrives as a space
    except ValueError:
        before = None
    return render(request, "backups/wedding_timeline.html", {
        "wedding": wedding, "timeline": wedding_timeline(wedding=wedding, before=before, limit=100,
                                                         audit=request.user.has_perm("backups.view_auditevent"))})


@action("backups.backup_wedding")
def wedding_backup(request: HttpRequest, slug: str) -> HttpResponse:
    job = backup_start(wedding=get_object_or_404(Wedding, slug=slug), requested_by=request.user)
    messages.success(request, f"Backup job #{job.pk} queued.")
    return redirect("backups:wedding", slug=slug)


@action("backups.backup_wedding")
def wedding_verify(request: HttpRequest, slug: str) -> HttpResponse:
    job = verify_start(wedding=get_object_or_404(Wedding, slug=slug), requested_by=request.user)
    messages.success(request, f"Verify job #{job.pk} queued.")
    return redirect("backups:wedding", slug=slug)


@action("backups.restore_wedding")
def wedding_restore_to(request: HttpRequest, slug: str) -> HttpResponse:
    """Restore into a folder on the server, as a job the wedding page shows with its progress."""
    wedding = get_object_or_404(Wedding, slug=slug)
    form = RestoreForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
        return redirect("backups:wedding", slug=slug)
    job = restore_start(wedding=wedding, to=form.cleaned_data["path"], only=form.cleaned_data["only"],
                        requested_by=request.user)
    messages.success(request, f"Restore job #{job.pk} queued into {form.cleaned_data['path']}.")
    return redirect("backups:wedding", slug=slug)


@action("backups.restore_wedding")
def wedding_restore(request: HttpRequest, slug: str) -> HttpResponse:
    """Queue a zip of every file; the wedding page offers it for download once a worker has built it."""
    wedding = get_object_or_404(Wedding, slug=slug)
    try:
        job = zip_start(wedding=wedding, requested_by=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Zip job #{job.pk} queued: the download appears on this page when it is ready.")
    return redirect("backups:wedding", slug=slug)


@page("backups.restore_wedding")
def asset_download(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """One file, streamed from its best healthy copy and sha256-checked on the way (``backups.fetch``)."""
    asset = get_object_or_404(Asset.objects.select_related("wedding"), pk=pk, wedding__slug=slug)
    try:
        fetched = asset_fetch(asset=asset, by=request.user)
    except FetchArchived as exc:
        return render(request, "backups/asset_archived.html", {
            "asset": asset, "archived": exc, "waiting": rehydration_waiting(asset=asset)})
    except FetchError as exc:
        messages.error(request, f"Download failed: {exc}")
        return redirect("backups:wedding", slug=slug)
    content_type = mimetypes.guess_type(fetched.filename)[0] or "application/octet-stream"
    response = StreamingHttpResponse(fetched.chunks, content_type=content_type)
    response["Content-Length"] = str(asset.size)
    response["Content-Disposition"] = content_disposition_header(True, fetched.filename)
    response["X-Served-From"] = fetched.provider
    return response


@action("backups.restore_wedding")
def assets_download_selection(request: HttpRequest, slug: str) -> HttpResponse:
    """The files ticked on the grid as one zip, streamed while it is built (``backups.selection``)."""
    wedding = get_object_or_404(Wedding, slug=slug)
    try:
        assets = selection_check(wedding=wedding, asset_ids=request.POST.getlist("asset"))
    except SelectionError as exc:
        messages.error(request, f"Nothing downloaded: {exc}.")
        return redirect(f"{reverse('backups:wedding', args=[slug])}#photos")
    response = StreamingHttpResponse(selection_zip(wedding=wedding, assets=assets, by=request.user),
                                     content_type="application/zip")
    response["Content-Disposition"] = content_disposition_header(True, f"{slug}-{len(assets)}-files.zip")
    return response


@action("backups.rehydrate_asset")
def asset_rehydrate_request(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Ask the archive to rehydrate a file held only in archive classes, as a job that e-mails when it is ready."""
    asset = get_object_or_404(Asset.objects.select_related("wedding"), pk=pk, wedding__slug=slug)
    try:
        rehydration, new = rehydration_request(asset=asset, by=request.user)
    except (FetchError, ProviderError) as exc:
        messages.error(request, f"Rehydration not requested: {exc}")
    else:
        state = "requested" if new else "already under way: you joined it"
        told = f"{request.user.email} gets an e-mail" if request.user.email else "This page shows"
        messages.success(request, f"Rehydration of {asset.relative_path} {state} ({rehydration.provider_name}, about "
                                  f"{rehydration.hours:g} hours). {told} when it is ready.")
    return redirect("backups:wedding", slug=slug)


@page("backups.view_wedding")
def asset_thumbnail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The photo's thumbnail, made at ingest and kept locally; 404 when there is none (RAW, video, unreadable)."""
    sha256 = get_object_or_404(Asset.objects.only("sha256"), pk=pk, wedding__slug=slug).sha256
    path = thumbnail_path(sha256=sha256)
    if not sha256 or not path.is_file():
        raise Http404("no thumbnail for this file")
    response = FileResponse(path.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"  # named by the photo's sha256: never changes
    return response
