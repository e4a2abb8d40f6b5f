"""What alerts are raised for, checked together by ``alerts_check`` (the "alert_check" schedule, every 5 minutes):
a wedding below policy too long, failed and stuck jobs, providers down, watched sources that vanished or went
quiet on a wedding day. Each check raises what is true now and the sweep resolves the rest of its kind.

Providers are also alerted at once from the providers' signals (``provider_alert_sync``, connected in
``ProtectionConfig.ready``); the sweep is the safety net. Cost budgets are checked by the costs layer after each
cost snapshot (``costs.budget``); scrub and drill mismatches by scrubbing and drills themselves.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import django_rq
import redis
from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.formats import date_format
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from backups.models import BackupJob, WeddingHealth
from providers.models import Provider

from .alerts import alert_raise, alert_resolve, alerts_batched, alerts_resolve_absent, alerts_retry
from .models import Alert
from .source_checks import sources_check

log = logging.getLogger(__name__)
Kind = Alert.Kind
FAILED_WINDOW = dt.timedelta(days=1)
# Redis hash: wedding id -> when a sweep first found it at risk (for weddings whose files were protected once and
# lost copies later: no asset field says since when).
BELOW_POLICY_SEEN = "wedbackup:alerts:below-policy-since"
RQ_GONE = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def minutes_setting(name: str, default: int) -> dt.timedelta:
    return dt.timedelta(minutes=int(getattr(settings, name, default)))


def _when(at: dt.datetime) -> str:
    return date_format(timezone.localtime(at), "Y-m-d H:i T")


# -- below policy -------------------------------------------------------------------------------------------------
def _first_seen_at_risk(wedding_ids: set[int], now: dt.datetime) -> dict[int, dt.datetime]:
    """When each of these weddings was first found at risk by a sweep (now for the new ones); forgets the rest.
    A time after ``now`` (the clock went back) counts as now: it would silence the wedding until the clock caught up."""
    conn = django_rq.get_connection("default")
    stored = {int(k): dt.datetime.fromtimestamp(float(v), dt.UTC) for k, v in conn.hgetall(BELOW_POLICY_SEEN).items()}
    gone = [k for k in stored if k not in wedding_ids]
    if gone:
        conn.hdel(BELOW_POLICY_SEEN, *gone)
    stored = {k: v for k, v in stored.items() if v <= now}
    new = {k: now.timestamp() for k in wedding_ids if k not in stored}
    if new:
        conn.hset(BELOW_POLICY_SEEN, mapping=new)
    return {k: stored.get(k, now) for k in wedding_ids}


def below_policy_check(*, now: dt.datetime) -> dict[str, set[str]]:
    """Weddings at risk (stored WeddingHealth) for longer than WEDBACKUP_ALERT_BELOW_POLICY_MINUTES: since their
    oldest never-protected file was complete, or since a sweep first saw them at risk, whichever is earlier."""
    threshold = minutes_setting("WEDBACKUP_ALERT_BELOW_POLICY_MINUTES", 60)
    risky = list(WeddingHealth.objects.filter(at_risk=True).select_related("wedding"))
    seen = _first_seen_at_risk({h.wedding_id for h in risky}, now)
    keys = set()
    for health in risky:
        since = min(t for t in (health.oldest_unprotected_at, seen[health.wedding_id]) if t)  # <= now
        if now - since < threshold:
            continue
        key = f"below_policy:{health.wedding_id}"
        alert_raise(key=key, kind=Kind.BELOW_POLICY,
                    subject=f"{health.wedding}: {health.assets_at_risk} files below policy",
                    detail=f"Below policy since {_when(since)}: {health.assets_at_risk} of {health.files} files "
                           f"({health.bytes_at_risk} bytes) lack the copies the policy asks for "
                           f"(figures as of {_when(health.refreshed_at)}).")
        keys.add(key)
    return {Kind.BELOW_POLICY: keys}


# -- jobs ---------------------------------------------------------------------------------------------------------
def _job_key(wedding_id: int | None, kind: str) -> str:
    return f"job_failed:{wedding_id or 'fleet'}:{kind}"


def failed_jobs_check(*, now: dt.datetime) -> dict[str, set[str]]:
    """One alert per wedding and job kind whose last finished job failed (or partly): opened for failures of the
    last day, kept open until a later job of that wedding and kind succeeds."""
    failed = Q(status__in=[BackupJob.Status.FAILED, BackupJob.Status.PARTIAL])
    groups = set(BackupJob.objects.filter(failed, finished_at__gte=now - FAILED_WINDOW)
                 .values_list("wedding_id", "kind").distinct().order_by())
    for key in Alert.objects.filter(kind=Kind.JOB_FAILED, resolved_at__isnull=True).values_list("key", flat=True):
        _, wedding, kind = (key.split(":", 2) + ["", ""])[:3]
        if wedding == "fleet" or wedding.isdigit():  # anything else is not ours to judge: the sweep resolves it
            groups.add((None if wedding == "fleet" else int(wedding), kind))
    if not groups:
        return {Kind.JOB_FAILED: set()}
    wedding_ids = {w for w, _ in groups if w is not None}
    last = (BackupJob.objects.filter(Q(wedding_id__in=wedding_ids) | Q(wedding__isnull=True))
            .filter(kind__in={k for _, k in groups}).values("wedding_id", "kind")
            .annotate(failed_at=Max("finished_at", filter=failed),
                      ok_at=Max("finished_at", filter=Q(status=BackupJob.Status.SUCCEEDED))).order_by())
    keys = set()
    for row in last:
        group = (row["wedding_id"], row["kind"])
        if group not in groups or row["failed_at"] is None or (row["ok_at"] and row["ok_at"] > row["failed_at"]):
            continue
        job = (BackupJob.objects.filter(failed, wedding_id=row["wedding_id"], kind=row["kind"])
               .select_related("wedding").order_by("-finished_at").first())
        key = _job_key(*group)
        what = job.wedding.couple if job.wedding else "the fleet"
        alert_raise(key=key, kind=Kind.JOB_FAILED, subject=f"{job.kind} of {what} {job.status} (job #{job.pk})",
                    detail=f"Finished {_when(job.finished_at)}: {job.files_done} files done, {job.files_failed} "
                           f"failed. {job.error_summary[:1000]}".strip())
        keys.add(key)
    return {Kind.JOB_FAILED: keys}


def _rq_gone(job: BackupJob) -> str:
    """Why the RQ job behind this row can no longer finish it ("" when it can, or none is recorded)."""
    if not job.rq_job_id:
        return ""
    try:
        status = Job.fetch(job.rq_job_id, connection=django_rq.get_connection(job.queue)).get_status()
    except NoSuchJobError:
        return "its RQ job is gone"
    except (KeyError, redis.RedisError):  # an unknown queue name or Redis away: not this job's fault
        return ""
    return f"its RQ job is {status}" if status in RQ_GONE else ""


def stuck_jobs_check(*, now: dt.datetime) -> dict[str, set[str]]:
    """Jobs queued or running longer than WEDBACKUP_ALERT_STUCK_MINUTES, or whose RQ job is gone."""
    threshold = minutes_setting("WEDBACKUP_ALERT_STUCK_MINUTES", 120)
    keys = set()
    active = BackupJob.objects.filter(status__in=[BackupJob.Status.QUEUED, BackupJob.Status.RUNNING])
    for job in active.select_related("wedding"):
        since = job.started_at or job.created
        why = _rq_gone(job) or (f"{job.status} since {_when(since)}" if now - since >= threshold else "")
        if not why:
            continue
        key = f"job_stuck:{job.pk}"
        what = job.wedding.couple if job.wedding else "the fleet"
        alert_raise(key=key, kind=Kind.JOB_STUCK, subject=f"{job.kind} of {what} is stuck (job #{job.pk})",
                    detail=f"Job #{job.pk} is {job.status}: {why}; {job.files_done} of {job.files_planned} files "
                           f"done. Retry it from the Jobs page.")
        keys.add(key)
    return {Kind.JOB_STUCK: keys}


# -- providers ----------------------------------------------------------------------------------------------------
def provider_alert_sync(*, provider: Provider) -> bool:
    """Raise or resolve a provider's alert from its row: down opens one; drained by staff keeps an open one open
    (it is not back) but opens none (staff know). Returns whether it is open."""
    key = f"provider_down:{provider.pk}"
    down = provider.enabled and provider.status == Provider.Status.DOWN
    drained = provider.enabled and provider.status == Provider.Status.DRAINING
    if down or (drained and Alert.objects.filter(key=key, resolved_at__isnull=True).exists()):
        alert_raise(key=key, kind=Kind.PROVIDER_DOWN, subject=f"Provider {provider.name} is {provider.status}",
                    detail=f"{provider.get_kind_display()} {provider.name} has been {provider.status} since "
                           f"{_when(provider.status_changed_at)}: its copies do not count and new work goes elsewhere.")
        return True
    alert_resolve(key=key)
    return False


def provider_alert_receive(*, provider: Provider | None = None, provider_id: int | None = None, **_) -> None:
    """Receiver of ``breaker_opened``, ``breaker_closed`` and ``provider_status_changed``: the provider's alert
    follows its row at once. Never raises: it runs inside uploads and probes, and the sweep catches up."""
    try:
        pk = provider.pk if provider is not None else provider_id
        row = Provider.objects.filter(pk=pk).first()
        if row is not None:
            provider_alert_sync(provider=row)
    except Exception:
        log.exception("provider alert for %s failed", provider_id or getattr(provider, "pk", None))


def providers_check(*, now: dt.datetime) -> dict[str, set[str]]:
    down = {p.pk for p in Provider.objects.all() if provider_alert_sync(provider=p)}
    return {Kind.PROVIDER_DOWN: {f"provider_down:{pk}" for pk in down}}


CHECKS: list[Callable[..., dict[str, set[str]]]] = [
    below_policy_check, failed_jobs_check, stuck_jobs_check, providers_check, sources_check,
]


def alerts_check(*, now: dt.datetime | None = None) -> dict:
    """Run every check, then resolve the alerts of each kind whose condition no longer holds, and send again the
    messages that failed before. A check that fails resolves nothing of its kinds (it does not know what is still
    true). Messages go out at the end, as one digest when there are many. Returns {kind: open, "resolved": n}.
    ``now``: the time the conditions are judged at (tests); alerts are stamped with the real time."""
    now = now or timezone.now()
    result: dict = {"resolved": 0}
    with alerts_batched():  # many messages at once (an outage) go out as one digest
        for check in CHECKS:
            try:
                found = check(now=now)
            except Exception:
                log.exception("alert check %s failed", check.__name__)
                result[check.__name__] = "failed"
                continue
            for kind, keys in found.items():
                result["resolved"] += len(alerts_resolve_absent(kind=kind, keys=keys))
                result[str(kind)] = len(keys)
        result["retried"] = alerts_retry()  # messages that failed before (a webhook or mail server down)
    return result
