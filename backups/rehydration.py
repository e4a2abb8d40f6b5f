"""Bring a file back from an archive class as a job that tells the requester when it is ready.

A request asks the archive holding the fastest archived copy for a restore, then a poll (an RQ job that
re-enqueues itself with rq's scheduler, never a sleep loop) opens the copy until the provider serves it. Then
the rehydration is ready: the requesters get an e-mail, the wedding page shows it, and the one-file download
serves that copy (``backups.fetch``). A second request for the same file joins the first (one waiting
rehydration per file, enforced by the database); every request is audited."""

from __future__ import annotations

import datetime as dt
import logging

import django_rq
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from providers.backends import backend_for
from providers.backends.base import NeedsRestore, ProviderError

from .audit import audit_record
from .fetch import FetchError, fetch_candidates
from .models import Asset, Rehydration, Replica
from .rehydration_models import READY_DAYS
from .restore_copy import replica_open

log = logging.getLogger(__name__)

QUEUE = "default"
POLL_EVERY = dt.timedelta(minutes=15)
GIVE_UP_AFTER = dt.timedelta(days=3)  # beyond the slowest class announced (Deep Archive, 48 h)


def rehydration_request(*, asset: Asset, by) -> tuple[Rehydration, bool]:
    """Ask for the file back, or join the request already waiting for it. Returns it and whether it is new.
    FetchError when no archived copy is the only way to read the file."""
    user = by if getattr(by, "pk", None) else None
    target = f"asset:{asset.wedding.slug}/{asset.relative_path}"
    with transaction.atomic():
        Asset.objects.select_for_update().filter(pk=asset.pk).first()  # requests for one file, one at a time
        waiting = Rehydration.objects.filter(asset=asset, status=Rehydration.Status.WAITING).first()
        if waiting is not None:
            if user and user.pk not in waiting.notify:
                waiting.notify = [*waiting.notify, user.pk]
                waiting.save(update_fields=["notify"])
            audit_record(by=by, action="asset.rehydrate", target=target,
                         details={"provider": waiting.provider_name, "storage_class": waiting.storage_class,
                                  "joined": waiting.pk})
            return waiting, False
        candidates, hours = fetch_candidates(asset=asset)
        archived = [r for r in candidates if hours.get((r.provider_id, r.storage_class), 0) > 0]
        if not archived:
            raise FetchError(f"{asset.relative_path} has no archived copy to rehydrate")
        if len(archived) < len(candidates):
            raise FetchError(f"{asset.relative_path} has a copy that can be read now: download it")
        replica = min(archived, key=lambda r: hours[(r.provider_id, r.storage_class)])
        rehydration = Rehydration.objects.create(
            asset=asset, replica=replica, provider_name=replica.provider.name, storage_class=replica.storage_class,
            hours=hours[(replica.provider_id, replica.storage_class)], requested_by=user,
            notify=[user.pk] if user else [])
        audit_record(by=by, action="asset.rehydrate", target=target,
                     details={"provider": replica.provider.name, "storage_class": replica.storage_class,
                              "hours": rehydration.hours, "rehydration": rehydration.pk})
        transaction.on_commit(lambda: _schedule(rehydration.pk, after=None))
    return rehydration, True


def rehydration_waiting(*, asset: Asset) -> Rehydration | None:
    return Rehydration.objects.filter(asset=asset, status=Rehydration.Status.WAITING).first()


def rehydration_poll(*, rehydration: Rehydration, now: dt.datetime | None = None) -> str:
    """Ask the provider once, then see whether it serves the copy yet: ready (tell the requesters), wait (poll
    again later), or give up after GIVE_UP_AFTER or when the copy is gone. Returns the status."""
    now = now or timezone.now()
    if rehydration.status != Rehydration.Status.WAITING:
        return rehydration.status
    replica = rehydration.replica
    if replica is None or replica.status != Replica.Status.VERIFIED:
        return _finish(rehydration, Rehydration.Status.FAILED, now, error="the archived copy is gone")
    backend = backend_for(replica.provider)
    rehydration.polls += 1
    try:
        if rehydration.asked_at is None:
            backend.request_restore(replica.object_key)
            rehydration.asked_at = now
        replica_open(backend, replica).close()
    except NeedsRestore:
        rehydration.last_error = ""
    except ProviderError as exc:  # unreachable for now: the next poll tries again
        rehydration.last_error = str(exc)[:1000]
        log.warning("rehydration %s: %s", rehydration.pk, exc)
    else:
        return _finish(rehydration, Rehydration.Status.READY, now)
    if now - rehydration.requested_at > GIVE_UP_AFTER:
        return _finish(rehydration, Rehydration.Status.FAILED, now,
                       error=rehydration.last_error or f"not readable after {GIVE_UP_AFTER.days} days")
    rehydration.save(update_fields=["polls", "asked_at", "last_error"])
    _schedule(rehydration.pk, after=POLL_EVERY)
    return rehydration.status


def rehydration_poll_job(rehydration_id: int) -> str:
    """RQ entry: one poll of a waiting rehydration."""
    return rehydration_poll(rehydration=Rehydration.objects.select_related(
        "replica__provider", "asset__wedding").get(pk=rehydration_id))


def rehydrations_resume() -> int:
    """Cron: a waiting rehydration whose poll is no longer in Redis (flushed, failed, a worker lost with it) gets
    a poll now, so no request waits for ever. Returns how many were resumed."""
    connection = django_rq.get_connection(QUEUE)
    resumed = 0
    for rehydration_id, job_id in Rehydration.objects.filter(status=Rehydration.Status.WAITING).values_list(
            "pk", "rq_job_id"):
        try:
            alive = bool(job_id) and Job.fetch(job_id, connection=connection).get_status() not in (
                JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED)
        except NoSuchJobError:
            alive = False
        if not alive:
            _schedule(rehydration_id, after=None)
            resumed += 1
    return resumed


def _schedule(rehydration_id: int, *, after: dt.timedelta | None) -> None:
    queue = django_rq.get_queue(QUEUE, commit_mode="auto")
    job = (queue.enqueue(rehydration_poll_job, rehydration_id) if after is None
           else queue.enqueue_in(after, rehydration_poll_job, rehydration_id))
    Rehydration.objects.filter(pk=rehydration_id).update(rq_job_id=job.id)


def _finish(rehydration: Rehydration, status: str, now: dt.datetime, *, error: str = "") -> str:
    rehydration.status, rehydration.last_error = status, error
    rehydration.ready_at = now if status == Rehydration.Status.READY else None
    rehydration.save(update_fields=["status", "last_error", "ready_at", "polls", "asked_at"])
    asset = rehydration.asset
    audit_record(by=None, action="asset.rehydrated" if status == Rehydration.Status.READY else "asset.rehydrate_failed",
                 target=f"asset:{asset.wedding.slug}/{asset.relative_path}",
                 details={"provider": rehydration.provider_name, "rehydration": rehydration.pk, "error": error})
    _notify(rehydration)
    return status


def _notify(rehydration: Rehydration) -> None:
    asset = rehydration.asset
    emails = sorted({u.email for u in get_user_model().objects.filter(pk__in=rehydration.notify) if u.email})
    if not emails:
        return
    if rehydration.status == Rehydration.Status.READY:
        subject = f"[WedBackup] {asset.relative_path} is back from the archive"
        body = (f"{asset.relative_path} of {asset.wedding.couple} ({asset.wedding.slug}) was rehydrated on "
                f"{rehydration.provider_name}. Download it from the wedding page within the next "
                f"{READY_DAYS} days, while the provider keeps the readable copy.")
    else:
        subject = f"[WedBackup] {asset.relative_path} could not be rehydrated"
        body = f"{asset.relative_path} of {asset.wedding.couple}: {rehydration.last_error}"
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, emails)
    except Exception:  # the page shows the state anyway; a mail server down must not fail the job
        log.exception("rehydration %s: the e-mail could not be sent", rehydration.pk)

