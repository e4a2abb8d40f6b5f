"""Failover: one event per outage, queued work released and redirected, stakeholders told once; staff actions.

Where redirected work lands is routing's business (it never picks a provider that does not accept work, and
scores the alternates like any placement); this module releases what was waiting for the provider, starts a
round for every wedding that had work or copies on it (wedding-day-critical first), and records the outcome
when it ends. It learns of breakers opening and closing through ``providers.signals`` (receivers connected in
``BackupsConfig.ready``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from providers.breaker import breaker_store
from providers.health import provider_probe
from providers.models import FailoverEvent, Provider, ProviderHealthCheck

from .audit import actor_label, audit_record
from .models import Asset, AuditEvent, BackupJob, Replica, Wedding
from .snapshots import fleet_health_soon
from .tasks import backup_start

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    Actor = AbstractBaseUser | str | None  # a staff user, a label such as "cli:alice", or None for the system

log = logging.getLogger(__name__)
IN_FLIGHT = (Replica.Status.PLANNED, Replica.Status.UPLOADING)
DEFAULT_THROUGHPUT = 10 * 1024 * 1024  # bytes/s when too little was measured recently


# -- estimates ------------------------------------------------------------------------------------------
def estimate_seconds(*, bytes_to_copy: int, bytes_queued: int, throughput_bps: float) -> float:
    """Time to get every affected wedding back to policy: the queue ahead plus the re-copies, at our pace."""
    return (bytes_to_copy + bytes_queued) / max(throughput_bps, 1.0)


def measured_throughput(*, hours: float = 1.0) -> float:
    """Bytes/s the fleet verified recently (first to last verification), or a sane default."""
    since = timezone.now() - dt.timedelta(hours=hours)
    agg = Replica.objects.filter(status=Replica.Status.VERIFIED, verified_at__gte=since).aggregate(
        total=Sum("size"), n=Count("pk"), first=Min("verified_at"), last=Max("verified_at"))
    default = float(getattr(settings, "WEDBACKUP_FAILOVER_THROUGHPUT", DEFAULT_THROUGHPUT))
    if not agg["n"] or agg["n"] < 5 or not agg["total"]:
        return default
    span = (agg["last"] - agg["first"]).total_seconds()
    return agg["total"] / span if span >= 1 else default


# -- the automatic failover ---------------------------------------------------------------------------------
def _urgency(wedding: Wedding) -> tuple:
    return (not wedding.wedding_day_critical, -wedding.date.toordinal(), wedding.pk)


def failover_begin(*, provider: Provider, trigger: str, reason: str) -> FailoverEvent:
    """Start (or join) the provider's outage: release its queued work and start a round per affected wedding."""
    with transaction.atomic():
        Provider.objects.select_for_update().filter(pk=provider.pk).first()  # one event per outage
        event = FailoverEvent.objects.filter(provider=provider, resolved_at__isnull=True).first()
        if event is not None:
            return event
        held = Q(replicas__provider=provider, replicas__status__in=[*IN_FLIGHT, Replica.Status.VERIFIED])
        stats = Asset.objects.filter(held).aggregate(n=Count("pk", distinct=True), total=Sum("size"))
        weddings = sorted(Wedding.objects.filter(pk__in=Asset.objects.filter(held).values("wedding_id")),
                          key=_urgency)
        released = Replica.objects.filter(provider=provider, status__in=IN_FLIGHT).update(
            status=Replica.Status.FAILED, last_error=Replica.REDIRECTED, permanent_failure=False,
            updated=timezone.now())
        queued = Replica.objects.filter(status__in=IN_FLIGHT).exclude(provider=provider).aggregate(
            total=Sum("asset__size"))["total"] or 0
        throughput = measured_throughput()
        to_copy = stats["total"] or 0
        # Wedding-day-critical weddings first have their other copies checked on the providers themselves.
        jobs = [backup_start(wedding=w, kind=BackupJob.Kind.FAILOVER,
                             validate_survivors_of=provider.pk if w.wedding_day_critical else None)
                for w in weddings]
        event = FailoverEvent.objects.create(
            provider=provider, trigger=trigger, reason=reason[:4000],
            affected_weddings=len(weddings), affected_assets=stats["n"] or 0,
            estimated_seconds=round(estimate_seconds(bytes_to_copy=to_copy, bytes_queued=queued,
                                                     throughput_bps=throughput), 1),
            redirected={
                "from": provider.name, "released_replicas": released, "bytes_to_copy": to_copy,
                "bytes_queued": queued, "throughput_bps": round(throughput),
                "weddings": [{"id": w.pk, "slug": w.slug, "critical": w.wedding_day_critical, "job": j.pk,
                              "queue": j.queue} for w, j in zip(weddings, jobs, strict=True)],
            },
        )
    log.warning("failover from %s began (%s): %d wedding(s), %d asset(s)", provider.name, trigger,
                event.affected_weddings, event.affected_assets)
    failover_notify(event=event)
    return event


def failover_end(*, provider: Provider) -> FailoverEvent | None:
    """Resolve the provider's open event: record where the work went and start repair for its weddings."""
    with transaction.atomic():
        Provider.objects.select_for_update().filter(pk=provider.pk).first()
        event = FailoverEvent.objects.filter(provider=provider, resolved_at__isnull=True).first()
        if event is None:
            return None
        now = timezone.now()
        info = dict(event.redirected)
        affected = info.get("weddings", [])
        jobs = list(BackupJob.objects.filter(pk__in=[w["job"] for w in affected]))
        finished = [j.finished_at for j in jobs if j.finished_at]
        done_at = max(finished) if jobs and len(finished) == len(jobs) else now
        # Weddings backed up during the outage got temporary copies too, though they had nothing here.
        wedding_ids = {w["id"] for w in affected} | set(
            Replica.objects.filter(temporary=True, status=Replica.Status.VERIFIED, created__gte=event.started_at)
            .values_list("asset__wedding_id", flat=True).distinct())
        moved = (
            Replica.objects.filter(asset__wedding_id__in=wedding_ids, status=Replica.Status.VERIFIED,
                                   verified_at__gte=event.started_at)
            .exclude(provider=provider).values("provider__name")
            .annotate(assets=Count("pk"), bytes=Sum("size"), temporary=Count("pk", filter=Q(temporary=True)))
        )
        info["to"] = {r["provider__name"]: {"assets": r["assets"], "bytes": r["bytes"] or 0,
                                            "temporary": r["temporary"]} for r in moved}
        weddings = sorted(Wedding.objects.filter(pk__in=wedding_ids), key=_urgency)
        info["repair_jobs"] = [backup_start(wedding=w, kind=BackupJob.Kind.REPAIR).pk for w in weddings]
        event.redirected = info
        event.resolved_at = now
        event.actual_seconds = round(max((done_at - event.started_at).total_seconds(), 0.0), 1)
        event.save(update_fields=["redirected", "resolved_at", "actual_seconds"])
    log.warning("failover from %s resolved after %.0fs", provider.name, event.actual_seconds)
    return event


def failover_notify(*, event: FailoverEvent) -> bool:
    """E-mail the stakeholders about the event, once: the row is claimed before the mail goes out."""
    recipients = list(getattr(settings, "WEDBACKUP_NOTIFY_EMAILS", []))
    if not recipients:
        return False
    if not FailoverEvent.objects.filter(pk=event.pk, notified_at__isnull=True).update(notified_at=timezone.now()):
        return False
    info = event.redirected or {}
    critical = [w["slug"] for w in info.get("weddings", []) if w.get("critical")]
    eta = event.estimated_seconds or 0
    state = "down" if event.trigger == FailoverEvent.Trigger.AUTOMATIC else "marked down by staff"
    lines = [
        f"Provider {event.provider.name} is {state} ({event.trigger} failover) since "
        f"{event.started_at:%Y-%m-%d %H:%M:%S %Z}.",
        f"Reason: {event.reason}",
        "",
        f"Affected: {event.affected_weddings} wedding(s), {event.affected_assets} file(s); "
        f"{info.get('released_replicas', 0)} queued upload(s) redirected to other providers.",
        f"Wedding-day-critical weddings redirected first: {', '.join(critical) or 'none'}.",
        f"Estimated time until every affected wedding is back to policy: {_duration(eta)}.",
        "",
        "Nothing needs doing: copies are being made on healthy providers. When the provider is back, a "
        "repair job restores the preferred placement and removes the temporary copies.",
    ]
    try:
        send_mail(f"[WedBackup] Failover: {event.provider.name} is {state}", "\n".join(lines),
                  settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:
        FailoverEvent.objects.filter(pk=event.pk).update(notified_at=None)  # the next health tick retries
        log.exception("failover notification for %s failed", event.provider.name)
        return False
    return True


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


# -- staff actions --------------------------------------------------------------------------------------
def _audit(*, by: Actor, action: str, provider: Provider, details: dict) -> AuditEvent:
    return audit_record(by=by, action=action, target=f"provider:{provider.name}", details=details)


def provider_mark_down(*, provider: Provider, by: Actor, reason: str = "") -> FailoverEvent:
    """Drain: no new work, queued work redirected. The monitor never brings a drained provider back."""
    previous = provider.status
    Provider.objects.filter(pk=provider.pk).update(status=Provider.Status.DRAINING, status_changed_at=timezone.now())
    fleet_health_soon()
    provider.refresh_from_db()
    label = actor_label(by)
    event = failover_begin(provider=provider, trigger=FailoverEvent.Trigger.MANUAL,
                           reason=reason or f"marked down by {label}")
    _audit(by=by, action="provider.mark_down", provider=provider,
           details={"reason": reason, "previous_status": previous, "failover_event": event.pk})
    return event


def provider_mark_up(*, provider: Provider, by: Actor) -> FailoverEvent | None:
    """Back in service: breaker closed with a clean history, the outage resolved (returned), repair started."""
    previous = provider.status
    breaker_store().reset(provider.pk)
    Provider.objects.filter(pk=provider.pk).update(status=Provider.Status.ACTIVE, status_changed_at=timezone.now())
    fleet_health_soon()
    provider.refresh_from_db()
    event = failover_end(provider=provider)
    _audit(by=by, action="provider.mark_up", provider=provider,
           details={"previous_status": previous, "failover_event": event.pk if event else None})
    return event


def provider_probe_now(*, provider: Provider, by: Actor) -> ProviderHealthCheck:
    """Probe now; an open breaker takes it as its trial, so a provider that recovered closes at once."""
    check = provider_probe(provider=provider, force_trial=True)
    provider.refresh_from_db()
    _audit(by=by, action="provider.probe", provider=provider,
           details={"ok": check.ok, "latency_ms": check.latency_ms, "error": check.error[:500],
                    "status": provider.status})
    return check


# -- receivers of providers.signals (connected in BackupsConfig.ready) ------------------------------------------
def on_breaker_opened(*, provider: Provider, reason: str, **_) -> None:
    try:
        failover_begin(provider=provider, trigger=FailoverEvent.Trigger.AUTOMATIC, reason=reason)
    except Exception:  # the breaker has already moved; the next health round reconciles what failed here
        log.exception("failover handling for %s failed", provider.name)


def on_breaker_closed(*, provider: Provider, **_) -> None:
    if provider.status == Provider.Status.DRAINING:  # staff drained it: only staff bring it back
        return
    try:
        failover_end(provider=provider)
    except Exception:
        log.exception("failover handling for %s failed", provider.name)


def failover_reconcile(*, providers: list[Provider], open_ids: set[int], closed_ids: set[int], **_) -> None:
    """After a health round: an open breaker without an open event begins one, a closed breaker with one ends
    it (unless staff drained the provider), and stakeholders not yet told are told."""
    store = breaker_store()
    open_events = set(FailoverEvent.objects.filter(resolved_at__isnull=True).values_list("provider_id", flat=True))
    for p in providers:
        p.refresh_from_db(fields=["status"])
        if p.pk in open_ids and p.pk not in open_events:
            failover_begin(provider=p, trigger=FailoverEvent.Trigger.AUTOMATIC,
                           reason=f"circuit open: {store.get(p.pk).last_error or 'repeated failures'}")
        elif p.pk in closed_ids and p.pk in open_events and p.status != Provider.Status.DRAINING:
            failover_end(provider=p)
    for event in FailoverEvent.objects.filter(resolved_at__isnull=True, notified_at__isnull=True):
        failover_notify(event=event)
