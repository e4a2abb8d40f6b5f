"""Health: probe providers with a hard timeout, record it, feed the breakers, mirror status, keep the schedule.

The monitor is one RQ job, ``health_tick``, that schedules its successor before it probes (so a crash
mid-probe never breaks the chain) and is kept unique by a marker key in Redis: a tick whose id is not
the marker's is a stray duplicate and stops. ``health_schedule()`` is idempotent: call it at every
worker start.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid

import django_rq
from django.conf import settings
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from .backends import backend_for
from .backends.base import Probe
from .breaker import CLOSED, OPEN, Transition, breaker_record, breaker_status, breaker_store
from .models import FailoverEvent, Provider, ProviderHealthCheck

log = logging.getLogger(__name__)
TICK_MARKER = "wedbackup:health:next-tick"
TICK_FUNC = "providers.health.health_tick"
_CONTINUE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


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
    return bool(
        Provider.objects.filter(pk=provider_id)
        .exclude(status__in=[Provider.Status.DRAINING, status])
        .update(status=status, status_changed_at=dt.datetime.now(dt.UTC))
    )


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
def _marker_ttl() -> int:
    return 3 * health_interval() + int(probe_timeout()) + 60


def _tick_options() -> dict:
    return {"job_timeout": int(probe_timeout()) + 120, "result_ttl": 10 * health_interval()}


def health_schedule() -> str:
    """Make sure exactly one health tick is pending; returns its job id. Safe to call from every worker."""
    queue = django_rq.get_queue(health_queue_name(), commit_mode="auto")
    conn = queue.connection
    current = conn.get(TICK_MARKER)
    if current is not None:
        job_id = current.decode()
        try:
            status = Job.fetch(job_id, connection=conn).get_status()
        except NoSuchJobError:  # expired or deleted: the chain is broken, start a new one
            status = None
        if status in (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED):
            return job_id
    next_id = f"wedbackup-health-{uuid.uuid4().hex}"
    if not conn.eval(_CONTINUE, 1, TICK_MARKER, current or "", next_id, _marker_ttl()):
        return conn.get(TICK_MARKER).decode()  # another process won the race
    queue.enqueue(TICK_FUNC, job_id=next_id, **_tick_options())
    return next_id


def health_tick() -> int:
    """RQ entry: schedule the next tick (if this tick is the chain's), then probe. Returns probes run."""
    job = get_current_job()
    if job is not None:
        queue = django_rq.get_queue(health_queue_name(), commit_mode="auto")
        next_id = f"wedbackup-health-{uuid.uuid4().hex}"
        if not queue.connection.eval(_CONTINUE, 1, TICK_MARKER, job.id, next_id, _marker_ttl()):
            return 0  # a stray duplicate: the chain lives on elsewhere
        queue.enqueue_in(dt.timedelta(seconds=health_interval()), TICK_FUNC, job_id=next_id, **_tick_options())
    return len(health_check_all())
