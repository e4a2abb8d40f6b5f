"""Failover: one event per outage, queued work released and redirected, stakeholders told once; staff actions.

Where redirected work lands is the engine's business (routing never picks a provider that does not
accept work); this module releases what was waiting for the provider, starts a round for every wedding
that had work or copies on it (wedding-day-critical first), and records the outcome when it ends.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Avg, Count, Max, Min, Q, Sum
from django.utils import timezone

from backups.models import Asset, AuditEvent, BackupJob, Replica, Wedding
from backups.routing import AssetTraits, ProviderState, Rules, WeddingTraits, _wishes
from wedbackup.periodic import fleet_health_soon

from .breaker import breaker_store
from .health import provider_probe
from .models import FailoverEvent, Provider, ProviderHealthCheck
from .residency import region_allowed

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    Actor = AbstractBaseUser | str | None  # a staff user, a label such as "cli:alice", or None for the system

log = logging.getLogger(__name__)
REDIRECTED = "provider down: redirected"
IN_FLIGHT = (Replica.Status.PLANNED, Replica.Status.UPLOADING)
DEFAULT_THROUGHPUT = 10 * 1024 * 1024  # bytes/s when too little was measured recently
WEIGHTS = {"health": 0.3, "latency": 0.15, "capacity": 0.1, "price": 0.15, "fit": 0.3}
SAME_VENDOR_PENALTY = 0.1  # another region of the failed vendor may share a vendor-wide outage
NEW_VENDOR_BONUS = 0.1
COMFORTABLE_FREE_BYTES = 1 << 40


# -- choosing alternates (pure) ------------------------------------------------------------------------
@dataclass(frozen=True)
class Alternate:
    provider_id: int
    name: str
    kind: str
    region: str
    score: float
    reasons: tuple[str, ...]


def alternates_for(
    provider_states: Iterable[ProviderState],
    failed: ProviderState | int,
    wedding_traits: WeddingTraits,
    rules: Rules,
    top: int = 3,
    *,
    holders: Iterable[int] = (),
    latency_ms: dict[int, float] | None = None,
    asset: AssetTraits | None = None,
) -> list[Alternate]:
    """The best ``top`` providers to take over from ``failed`` for one wedding (or one asset), best first.

    Never proposes a provider outside the wedding's residency zone (when enforced), one that does not
    accept work or lacks room, one that already holds the copy (``holders``), or one that would leave
    the holders plus it on fewer vendors than the policy's distinct-provider rule asks for.
    """
    states = list(provider_states)
    failed_id = failed if isinstance(failed, int) else failed.id
    failed_kind = next((s.kind for s in states if s.id == failed_id), None)
    holder_ids = set(holders) - {failed_id}
    holder_kinds = {s.kind for s in states if s.id in holder_ids}
    size = asset.size if asset else 0
    candidates = [
        s for s in states
        if s.id != failed_id and s.id not in holder_ids and s.accepts_work
        and (s.free_bytes is None or s.free_bytes >= size)
        and (not rules.enforce_residency or region_allowed(wedding_traits.zone, s.zone))
    ]
    if holder_ids and len(holder_kinds) < rules.min_distinct_providers:
        candidates = [s for s in candidates if s.kind not in holder_kinds]
    if not candidates:
        return []
    prices = {s.id: float(s.price(s.class_or_default(None))) for s in candidates}
    cheapest, dearest = min(prices.values()), max(prices.values())
    wishes = _wishes(wedding_traits, asset or AssetTraits("photo", 0))
    latency_ms = latency_ms or {}
    scored = []
    for s in candidates:
        reasons = [f"health {s.health:.0%}"]
        ms = latency_ms.get(s.id)
        latency = 0.5 if ms is None else 1 / (1 + ms / 1000)
        if ms is not None:
            reasons.append(f"latency {ms:.0f} ms")
        capacity = 1.0 if s.free_bytes is None else min(1.0, s.free_bytes / COMFORTABLE_FREE_BYTES)
        if s.free_bytes is not None:
            reasons.append(f"{s.free_bytes / 1e9:.0f} GB free")
        price = 1.0 if dearest == cheapest else (dearest - prices[s.id]) / (dearest - cheapest)
        reasons.append(f"${prices[s.id]:.4f}/GB-month")
        fits = [w.reason for w in wishes if s.kind in w.kinds and (not w.region_zone or s.zone == w.region_zone)]
        reasons.extend(f"fits: {r}" for r in fits)
        score = (WEIGHTS["health"] * s.health + WEIGHTS["latency"] * latency + WEIGHTS["capacity"] * capacity
                 + WEIGHTS["price"] * price + WEIGHTS["fit"] * bool(fits))
        if s.kind == failed_kind:
            score -= SAME_VENDOR_PENALTY
            reasons.append("same vendor as the failed provider: may share its outage")
        if holder_ids and s.kind not in holder_kinds:
            score += NEW_VENDOR_BONUS
            reasons.append("adds a vendor")
        scored.append(Alternate(s.id, s.name, s.kind, s.region, round(score, 4), tuple(reasons)))
    return sorted(scored, key=lambda a: (-a.score, a.name))[:top]


def recent_latencies(*, hours: float = 1.0) -> dict[int, float]:
    """Provider id -> mean latency of its successful probes in the last hours, for ``alternates_for``."""
    since = timezone.now() - dt.timedelta(hours=hours)
    rows = (ProviderHealthCheck.objects.filter(ok=True, checked_at__gte=since, latency_ms__isnull=False)
            .values("provider_id").annotate(ms=Avg("latency_ms")))
    return {r["provider_id"]: r["ms"] for r in rows}


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
    from backups.backup import backup_start

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
            status=Replica.Status.FAILED, last_error=REDIRECTED, permanent_failure=False, updated=timezone.now())
        queued = Replica.objects.filter(status__in=IN_FLIGHT).exclude(provider=provider).aggregate(
            total=Sum("asset__size"))["total"] or 0
        throughput = measured_throughput()
        to_copy = stats["total"] or 0
        jobs = [backup_start(wedding=w, kind=BackupJob.Kind.FAILOVER) for w in weddings]
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
    from backups.backup import backup_start

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
def _audit_label(by: Actor) -> str:
    if by is None:
        return "system"
    return by if isinstance(by, str) else by.get_username()


def _audit(*, by: Actor, action: str, provider: Provider, details: dict) -> AuditEvent:
    actor = None if by is None or isinstance(by, str) else by
    return AuditEvent.objects.create(actor=actor, actor_label=_audit_label(by), action=action,
                                     target=f"provider:{provider.name}", details=details)


def provider_mark_down(*, provider: Provider, by: Actor, reason: str = "") -> FailoverEvent:
    """Drain: no new work, queued work redirected. The monitor never brings a drained provider back."""
    previous = provider.status
    Provider.objects.filter(pk=provider.pk).update(status=Provider.Status.DRAINING, status_changed_at=timezone.now())
    fleet_health_soon()
    provider.refresh_from_db()
    label = _audit_label(by)
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
