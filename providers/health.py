"""Health: probe providers with a hard timeout, record it, feed the breakers, mirror status, keep the schedule.

The monitor is one RQ job, ``health_tick``, on a ``wedbackup.periodic.Chain``: it schedules its successor
before it probes (a crash mid-probe never breaks the chain) and a stray duplicate stops.
``health_schedule()`` is idempotent: call it at every worker start.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.utils import timezone

from wedbackup.periodic import Chain, fleet_health_soon

from .backends import backend_for
from .backends.base import Probe
from .breaker import CLOSED, OPEN, Transition, breaker_record, breaker_status, breaker_store
from .models import FailoverEvent, Provider, ProviderHealthCheck

log = logging.getLogger(__name__)


def health_interval() -> int:
    return int(getattr(settings, "WEDBACKUP_HEALTH_INTERVAL", 30))


def probe_timeout() -> float:
    return float(getattr(settings, "WEDBACKUP_PROBE_TIMEOUT", 20))


def health_queue_name() -> str:
    return getattr(settings, "WEDBACKUP_HEALTH_QUEUE", "health")


class _ProbeRun(threading.Thread):
    """One probe in a daemon thread: a provider that hangs costs a parked thread, never the monitor."""

    def __init__(self, provider: Provider):
        super().__init__(daemon=True, name=f"probe-{provider.name}")
        self.provider = provider
        self.result: Probe | None = None

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.result = backend_for(self.provider).probe()
        except Exception as exc:  # a bad configuration is a failed probe, not a crashed monitor
            self.result = Probe(False, (time.monotonic() - started) * 1000, f"{type(exc).__name__}: {exc}")


def backends_probe(providers: list[Provider], *, timeout: float | None = None) -> list[Probe]:
    """Probe every provider at once; each gets ``timeout`` seconds, after which it counts as failed."""
    timeout = probe_timeout() if timeout is None else timeout
    runs = [_ProbeRun(p) for p in providers]
    for run in runs:
        run.start()
    deadline = time.monotonic() + timeout
    for run in runs:
        run.join(max(0.0, deadline - time.monotonic()))
    return [run.result or Probe(False, timeout * 1000, f"probe timed out after {timeout:g}s") for run in runs]


def provider_probe(*, provider: Provider, force_trial: bool = False) -> ProviderHealthCheck:
    """Probe one provider now, record a ProviderHealthCheck and feed its breaker.

    An open breaker past its cool-down (or any open breaker with ``force_trial``) makes this probe
    the one half-open trial that may close it.
    """
    trial = breaker_store().try_trial(provider.pk, force=force_trial)
    (probe,) = backends_probe([provider])
    return _record(provider, probe, trial=trial)


def _record(provider: Provider, probe: Probe, *, trial: bool) -> ProviderHealthCheck:
    check = ProviderHealthCheck.objects.create(
        provider=provider, source=ProviderHealthCheck.Source.PROBE, ok=probe.ok,
        latency_ms=round(probe.latency_ms, 1), error=probe.error[:2000],
    )
    breaker_record(provider.pk, probe.ok, probe.error, trial=trial)
    return check


def health_check_all() -> list[ProviderHealthCheck]:
    """The scheduled job's work: probe every enabled provider concurrently, then reconcile.

    An open breaker is left alone until its cool-down has passed; then one probe is its trial.
    """
    store = breaker_store()
    providers = list(Provider.objects.filter(enabled=True))
    due: list[tuple[Provider, bool]] = []
    for p in providers:
        if store.get(p.pk).state == CLOSED:
            due.append((p, False))
        elif store.try_trial(p.pk):
            due.append((p, True))
    probes = backends_probe([p for p, _ in due])
    checks = [_record(p, probe, trial=trial) for (p, trial), probe in zip(due, probes, strict=True)]
    health_reconcile(providers)
    return checks


def provider_status_sync(*, provider_id: int, status: str) -> bool:
    """Mirror the breaker's status to the row; a provider staff drained keeps ``draining``."""
    changed = bool(
        Provider.objects.filter(pk=provider_id)
        .exclude(status__in=[Provider.Status.DRAINING, status])
        .update(status=status, status_changed_at=dt.datetime.now(dt.UTC))
    )
    if changed:
        fleet_health_soon()  # which weddings are at risk depends on which providers are reachable
    return changed


def breaker_changed(transition: Transition) -> None:
    """What a breaker change means for the database: the status, and a failover begun or ended."""
    from .failover import failover_begin, failover_end

    provider_status_sync(provider_id=transition.provider_id, status=transition.status_after)
    if not (transition.opened or transition.closed):
        return
    provider = Provider.objects.get(pk=transition.provider_id)
    try:
        if transition.opened:
            failover_begin(provider=provider, trigger=FailoverEvent.Trigger.AUTOMATIC,
                           reason=f"circuit opened: {transition.after.last_error or 'repeated failures'}")
        elif provider.status != Provider.Status.DRAINING:
            failover_end(provider=provider)
    except Exception:
        # The breaker has already moved; the next health tick reconciles what failed here.
        log.exception("failover handling for %s failed", provider.name)


def health_reconcile(providers: list[Provider]) -> None:
    """Make the database agree with the breakers, whatever a crashed worker left half done."""
    from .failover import failover_begin, failover_end, failover_notify

    store = breaker_store()
    open_events = set(FailoverEvent.objects.filter(resolved_at__isnull=True).values_list("provider_id", flat=True))
    for p in providers:
        state = store.get(p.pk)
        provider_status_sync(provider_id=p.pk, status=breaker_status(state, store.window(p.pk)))
        p.refresh_from_db(fields=["status"])
        if state.state == OPEN and p.pk not in open_events:
            failover_begin(provider=p, trigger=FailoverEvent.Trigger.AUTOMATIC,
                           reason=f"circuit open: {state.last_error or 'repeated failures'}")
        elif state.state == CLOSED and p.pk in open_events and p.status != Provider.Status.DRAINING:
            failover_end(provider=p)
    for event in FailoverEvent.objects.filter(resolved_at__isnull=True, notified_at__isnull=True):
        failover_notify(event=event)


# -- the schedule ---------------------------------------------------------------------------------------
HEALTH_CHAIN = Chain(marker="wedbackup:health:next-tick", func="providers.health.health_tick",
                     queue=health_queue_name, interval=health_interval, timeout=lambda: int(probe_timeout()) + 120)


def health_schedule() -> str:
    """Make sure exactly one health tick is pending; returns its job id. Safe to call from every worker."""
    return HEALTH_CHAIN.schedule()


def health_tick() -> int:
    """RQ entry: schedule the next tick (if this tick is the chain's), then probe. Returns probes run."""
    if not HEALTH_CHAIN.follow():
        return 0  # a stray duplicate: the chain lives on elsewhere
    return len(health_check_all())


def health_retention_days() -> int:
    return int(getattr(settings, "WEDBACKUP_HEALTH_RETENTION_DAYS", 30))


def health_checks_prune(now: dt.datetime | None = None) -> int:
    """Drop health checks older than the retention (~2,880 a day per provider at the default interval)."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=health_retention_days())
    deleted, _ = ProviderHealthCheck.objects.filter(checked_at__lt=cutoff).delete()
    return deleted
