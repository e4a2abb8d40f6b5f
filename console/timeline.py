"""A wedding's story, newest first: files catalogued, backup / repair / failover / verify / restore jobs with their
outcome, provider outages that moved its copies, cost moves, scrubs and drills that read it back, downloads,
rehydrations and deletes. One selector over the records each of them already leaves (jobs, the audit, failover
events, optimisations, drills, replicas' scrub times and deletions); a fixed number of queries, each capped,
whatever the wedding's history, with a cursor (``before``) for the next page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Max, Q, Sum, TextField
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone

from backups.models import Asset, AuditEvent, BackupJob, Replica, Wedding
from costs.models import Optimization
from protection.models import Drill, Schedule
from providers.models import FailoverEvent

EVENTS_PER_PAGE = 25
FAILOVERS_SCANNED = 200  # fleet-wide outages are rare: the newest few hundred cover any wedding's history

JOB_KINDS = {
    BackupJob.Kind.IMPORT: "import", BackupJob.Kind.BACKUP: "backup", BackupJob.Kind.REPAIR: "repair",
    BackupJob.Kind.FAILOVER: "failover", BackupJob.Kind.VERIFY: "verify", BackupJob.Kind.RESTORE: "restore",
    BackupJob.Kind.OPTIMISE: "cost move",
}
AUDIT_KINDS = {
    "asset.download": ("fetch", "Downloaded {name}"),
    "asset.download_selection": ("fetch", "Downloaded a selection of files as a zip"),
    "asset.rehydrate": ("rehydrate", "Asked the archive to rehydrate {name}"),
    "asset.rehydrated": ("rehydrate", "{name} is back from the archive: it can be downloaded"),
    "asset.rehydrate_failed": ("rehydrate", "{name} could not be rehydrated"),
    "wedding.download": ("restore", "Downloaded the wedding's zip"),
    "wedding.restore": ("restore", "Restore into a server folder requested"),
    "wedding.erase": ("erase", "Erased everywhere"),
}


@dataclass(frozen=True)
class TimelineEvent:
    at: dt.datetime
    kind: str  # import, backup, repair, failover, verify, scrub, drill, cost move, restore, fetch, rehydrate, ...
    title: str
    detail: str = ""
    outcome: str = ""  # a status for the badge (succeeded, partial, failed, running...), or "" for a plain fact
    actor: str = ""


@dataclass(frozen=True)
class TimelinePage:
    events: list[TimelineEvent]
    more: dt.datetime | None  # pass as ``before`` for the next (older) page; None when this is the last


def wedding_timeline(*, wedding: Wedding, before: dt.datetime | None = None, limit: int = EVENTS_PER_PAGE,
                     audit: bool = True) -> TimelinePage:
    """The newest ``limit`` events older than ``before`` (default: now and later), and the cursor to the next.
    ``audit``: whether the reader may see the audit (who downloaded, restored or deleted what); without it those
    events are left out and deletes show no one's name."""
    before = before or timezone.now() + dt.timedelta(days=1)
    events = [*_jobs(wedding, before, limit + 1), *_catalogued(wedding, before, limit + 1),
              *(_audit(wedding, before, limit + 1) if audit else []), *_failovers(wedding, before, limit + 1),
              *_cost_moves(wedding, before, limit + 1), *_scrubs(wedding, before, limit + 1),
              *_drills(wedding, before, limit + 1), *_deletes(wedding, before, limit + 1, audit=audit)]
    events.sort(key=lambda e: e.at, reverse=True)
    page = events[:limit]
    return TimelinePage(events=page, more=page[-1].at if len(events) > limit else None)


def wedding_next_runs(*, wedding: Wedding) -> dict:
    """When the wedding's folder is next scanned for new files (a backup of what changed) and when copies are next
    read back (scrub) and drilled, from ``protection.Schedule``; ``watch``: how new files are picked up."""
    schedules = list(Schedule.objects.filter(enabled=True, task__in=[Schedule.Task.SOURCE_SCAN, Schedule.Task.SCRUB,
                                                                     Schedule.Task.DRILL]))

    def first(task: str, plans: tuple[str, ...] = ("",)) -> Schedule | None:
        due = [s for s in schedules if s.task == task and s.plan in plans]
        return min(due, key=lambda s: s.next_run_at) if due else None

    if not wedding.watch_source or not wedding.source_path:
        watch, scan = "not watched: back it up with the button", None
    elif wedding.wedding_day_critical:
        watch, scan = "watched live (wedding-day critical): new files are backed up as they arrive", None
    else:
        scan = first(Schedule.Task.SOURCE_SCAN, (wedding.plan, ""))
        hours = scan.interval_minutes // 60 if scan and scan.interval_minutes % 60 == 0 else 0
        every = f"{hours} hour{'s' if hours != 1 else ''}" if hours else f"{scan and scan.interval_minutes} minutes"
        watch = f"rescanned every {every}" if scan else "no source scan scheduled"
    return {"watch": watch, "backup": scan, "scrub": first(Schedule.Task.SCRUB), "drill": first(Schedule.Task.DRILL)}


def _jobs(wedding: Wedding, before: dt.datetime, n: int) -> list[TimelineEvent]:
    jobs = (BackupJob.objects.filter(wedding=wedding, created__lt=before).select_related("requested_by")
            .order_by("-created")[:n])
    events = []
    for job in jobs:
        kind = JOB_KINDS.get(job.kind, job.kind)
        what = "Zip of the wedding" if job.params.get("zip") else f"{job.get_kind_display()} job"
        detail = f"{job.files_done} of {job.files_planned} files" if job.files_planned else ""
        if job.files_failed:
            detail += f", {job.files_failed} failed"
        if job.error_summary:
            detail += (": " if detail else "") + job.error_summary[:160]
        events.append(TimelineEvent(at=job.created, kind=kind, title=f"{what} #{job.pk}", detail=detail,
                                    outcome=job.status, actor=job.requested_by.get_username()
                                    if job.requested_by else "system"))
    return events


def _catalogued(wedding: Wedding, before: dt.datetime, n: int) -> list[TimelineEvent]:
    """New files grouped by the day they were first catalogued (an import, a watcher pick-up or a rescan)."""
    days = (Asset.objects.filter(wedding=wedding, created__lt=before).annotate(day=TruncDate("created"))
            .values("day").annotate(files=Count("id"), bytes=Sum("size"), last=Max("created")).order_by("-day")[:n])
    return [TimelineEvent(at=d["last"], kind="import", title=f"{d['files']} file{'s' if d['files'] != 1 else ''} "
                          "catalogued", detail=_size(d["bytes"] or 0)) for d in days]


def _audit(wedding: Wedding, before: dt.datetime, n: int) -> list[TimelineEvent]:
    mine = Q(target__startswith=f"asset:{wedding.slug}/") | Q(target=f"wedding:{wedding.slug}")  # audit_target_prefix
    rows = AuditEvent.objects.filter(mine, at__lt=before, action__in=list(AUDIT_KINDS)).order_by("-at")[:n]
    events = []
    for row in rows:
        kind, title = AUDIT_KINDS[row.action]
        name = row.target.split("/", 1)[1] if row.target.startswith("asset:") else row.target
        details = row.details or {}
        if row.action == "asset.download":
            detail = f"from {details.get('provider', '?')}" + (f" after {details['fallbacks']} failed cop"
                                                               f"{'y' if details['fallbacks'] == 1 else 'ies'}"
                                                               if details.get("fallbacks") else "")
        elif row.action == "asset.rehydrate":
            detail = (f"from {details.get('provider', '?')} ({details.get('storage_class') or 'archive'})"
                      + (", joining the request already made" if details.get("joined") else "")
                      + (f", about {details['hours']:g} hours" if details.get("hours") else ""))
        else:
            detail = ", ".join(f"{k} {v}" for k, v in details.items()
                               if k in ("provider", "storage_class", "files", "bytes", "to", "error") and v)
        events.append(TimelineEvent(at=row.at, kind=kind, title=title.format(name=name), detail=detail,
                                    outcome="failed" if row.action.endswith("failed") else "",
                                    actor=row.actor_label))
    return events


def _failovers(wedding: Wedding, before: dt.datetime, n: int) -> list[TimelineEvent]:
    """Outages that held copies of this wedding (their record lists the weddings they moved)."""
    events = []
    for event in (FailoverEvent.objects.filter(started_at__lt=before).select_related("provider")
                  .order_by("-started_at")[:FAILOVERS_SCANNED]):
        if not any(w.get("id") == wedding.pk for w in (event.redirected or {}).get("weddings", [])):
            continue
        back = f"; back after {_duration(event.resolved_at - event.started_at)}" if event.resolved_at else \
            "; still down"
        events.append(TimelineEvent(
            at=event.started_at, kind="failover", title=f"{event.provider.name} went down ({event.trigger}): "
                                                        "its work moved to other providers",
            detail=f"{event.reason[:120]}{back}", outcome="resolved" if event.resolved_at else "down"))
        if len(events) == n:
            break
    return events


def _cost_moves(wedding: Wedding, before: dt.datetime, n: int) -> list[TimelineEvent]:
    moves = (Optimization.objects.filter(wedding=wedding, applied_at__isnull=False, applied_at__lt=before)
             .select_related("applied_by").order_by("-applied_at")[:n])
    return [TimelineEvent(at=o.applied_at, kind="cost move", title=f"{o.get_kind_display()} applied",
                          detail=o.summary[:200] + (f" ({o.error[:120]})" if o.error else ""), outcome=o.status,
                          actor=o.applied_by.get_username() if o.applied_by else "system") for o in moves]


def _scrubs(wedding: Wedding, before: dt.datetime, n: int) -> list[TimelineEvent]:
    """Copies read back in full and hashed by the rolling scrub, by day (each copy's latest read)."""
    days = (Replica.objects.filter(asset__wedding=wedding, scrubbed_at__lt=before).annotate(day=TruncDate(
        "scrubbed_at")).values("day").annotate(copies=Count("id"), last=Max("scrubbed_at")).order_by("-day")[:n])
    return [TimelineEvent(at=d["last"], kind="scrub", title=f"Scrub read back {d['copies']} "
                          f"cop{'y' if d['copies'] == 1 else 'ies'} and matched their sha256") for d in days]


def _drills(wedding: Wedding, before: dt.datetime, n: int) -> list[TimelineEvent]:
    """Restore drills that failed on one of this wedding's files (a passed drill does not list what it sampled)."""
    drills = (Drill.objects.annotate(text=Cast("failures", TextField()))
              .filter(started_at__lt=before, text__contains=f'"{wedding.slug}/').select_related("provider")
              .order_by("-started_at")[:n])
    events = []
    for drill in drills:
        mine = [f["path"].split("/", 1)[1] for f in drill.failures if f["path"].startswith(f"{wedding.slug}/")]
        events.append(TimelineEvent(at=drill.started_at, kind="drill", title=f"Restore drill on "
                                    f"{drill.provider.name} failed on {len(mine)} of its files",
                                    detail=", ".join(mine[:5]), outcome="failed"))
    return events


def _deletes(wedding: Wedding, before: dt.datetime, n: int, *, audit: bool) -> list[TimelineEvent]:
    """Copies removed through the guarded delete (a cost move, a temporary copy pruned, an erasure): the replica
    row stays, marked deleted; the reason and who come from its audit event."""
    replicas = list(Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.DELETED, updated__lt=before)
                    .select_related("asset", "provider").order_by("-updated")[:n])
    audits = {e.target: e for e in AuditEvent.objects.filter(
        action="replica.delete", target__in=[f"replica:{r.pk}" for r in replicas])} if audit and replicas else {}
    events = []
    for replica in replicas:
        audit = audits.get(f"replica:{replica.pk}")
        reason = (audit.details or {}).get("reason", "") if audit else ""
        events.append(TimelineEvent(at=audit.at if audit else replica.updated, kind="delete",
                                    title="A copy was deleted (guarded)", actor=audit.actor_label if audit else "",
                                    detail=f"{replica.asset.relative_path} on {replica.provider.name}"
                                           + (f": {reason}" if reason else "")))
    return events


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
