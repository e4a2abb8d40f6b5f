"""Health: probe providers with a hard timeout, record it, feed the breakers, mirror status.

``health_check_all`` is the recurring job (registered with rq's cron scheduler in ``console.cron``). What a
breaker change means beyond this layer (a failover, stored figures recomputed) is for the receivers of
``providers.signals``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.utils import timezone

from .backends import backend_for
from .backends.base import Probe
from .breaker import CLOSED, OPEN, Transition, breaker_record, breaker_status, breaker_store
from .models import Provider, ProviderHealthCheck
from .signals import breaker_closed, breaker_opened, health_reconciled, provider_status_changed

log = logging.getLogger(__name__)


def probe_timeout() -> float:
    return float(getattr(settings, "WEDBACKUP_PROBE_TIMEOUT", 20))


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
    if changed:  # which weddings are at risk depends on which providers are reachable
        provider_status_changed.send(sender=Provider, provider_id=provider_id, status=status)
    return changed


def breaker_changed(*, transition: Transition, **_) -> None:
    """Receiver of ``breaker_transitioned``: mirror the status to the row, then tell the layers above that
    the breaker opened or closed (they begin or end a failover). The status mirrored is the breaker's as it is
    now, not as this transition left it: transitions recorded by concurrent uploads arrive here in any order, and
    an earlier "degraded" synced after a later "down" would leave an open breaker's provider looking usable."""
    store = breaker_store()
    now = breaker_status(store.get(transition.provider_id), store.window(transition.provider_id))
    provider_status_sync(provider_id=transition.provider_id, status=now)
    if not (transition.opened or transition.closed):
        return
    provider = Provider.objects.get(pk=transition.provider_id)
    if transition.opened:
        breaker_opened.send(sender=Provider, provider=provider,
                            reason=f"circuit opened: {transition.after.last_error or 'repeated failures'}")
    else:
        breaker_closed.send(sender=Provider, provider=provider)


def health_reconcile(providers: list[Provider]) -> None:
    """Make the rows agree with the breakers, whatever a crashed worker left half done; then tell the layers
    above which breakers are open and which closed, so they reconcile their own state (failover events)."""
    store = breaker_store()
    open_ids, closed_ids = set(), set()
    for p in providers:
        state = store.get(p.pk)
        provider_status_sync(provider_id=p.pk, status=breaker_status(state, store.window(p.pk)))
        if state.state == OPEN:
            open_ids.add(p.pk)
        elif state.state == CLOSED:
            closed_ids.add(p.pk)
    health_reconciled.send(sender=Provider, providers=providers, open_ids=open_ids, closed_ids=closed_ids)


def health_tick() -> int:
    """RQ entry of the recurring health job: probe every enabled provider. Returns the probes run."""
    return len(health_check_all())


def health_retention_days() -> int:
    return int(getattr(settings, "WEDBACKUP_HEALTH_RETENTION_DAYS", 30))


def health_checks_prune(now: dt.datetime | None = None) -> int:
    """Drop health checks older than the retention (~2,880 a day per provider at the default interval)."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=health_retention_days())
    deleted, _ = ProviderHealthCheck.objects.filter(checked_at__lt=cutoff).delete()
    return deleted
