"""Watched sources: which weddings' folders are watched, when a file there is complete, and taking what changed.

Wedding-day-critical weddings are watched in real time by ``manage.py watch_sources`` (``protection.watcher``);
the others are rescanned by ``sources_scan`` on their plan's schedule. Either way a file is taken only once its
size and mtime have held still for WEDBACKUP_WATCH_QUIET_SECONDS (a card copy or an export in progress is never
uploaded half-written), only new and changed files are read, and one backup per wedding follows what was taken.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import django_rq
import redis
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from backups.ingest import ImportReport, wedding_ingest_paths, wedding_rescan
from backups.models import CRITICAL_DAYS_AFTER, CRITICAL_DAYS_BEFORE, Asset, BackupJob, Wedding
from backups.tasks import backup_start

from .inbox import inbox_scan
from .source_checks import folder_problem

log = logging.getLogger(__name__)
# Files catalogued per call when many arrive at once: each call is its own transactions, memory stays bounded.
TAKE_BATCH = 500
_BACKUP_KINDS = (BackupJob.Kind.BACKUP, BackupJob.Kind.REPAIR, BackupJob.Kind.FAILOVER)
_UNSEEN = ("unseen",)
ACTIVE_JOB_STALE = dt.timedelta(minutes=15)
RQ_ALIVE = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def quiet_seconds() -> float:
    return float(settings.WEDBACKUP_WATCH_QUIET_SECONDS)


def source_problem(wedding: Wedding) -> str:
    """Why the wedding's source folder cannot be read ("" when it can): no folder set, gone, not listable."""
    if not wedding.source_path:
        return "no source folder is set"
    return folder_problem(wedding.source_path)


def critical_window(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The wedding dates that are wedding-day critical today (``Wedding.is_wedding_day_critical``, as a range)."""
    today = today or timezone.localdate()
    return today - dt.timedelta(days=CRITICAL_DAYS_AFTER), today + dt.timedelta(days=CRITICAL_DAYS_BEFORE)


def watched_weddings(*, critical: bool, plan: str = "", today: dt.date | None = None) -> QuerySet[Wedding]:
    """Weddings whose folder is watched: wedding-day critical ones (real time) or the others (schedules)."""
    weddings = Wedding.objects.filter(watch_source=True).exclude(source_path="")
    if plan:
        weddings = weddings.filter(plan=plan)
    first, last = critical_window(today)
    in_window = {"date__gte": first, "date__lte": last}
    return (weddings.filter(**in_window) if critical else weddings.exclude(**in_window)).order_by("pk")


def backup_ensure(*, wedding: Wedding) -> BackupJob | None:
    """Start a backup of what was taken, unless one is already queued for the wedding and can still run (it will
    plan the new files when it starts); a running one may have planned before they arrived, so it does not count."""
    queued = BackupJob.objects.filter(wedding=wedding, kind__in=_BACKUP_KINDS, status=BackupJob.Status.QUEUED)
    if any(backup_alive(job) for job in queued):
        return None
    return backup_start(wedding=wedding)


def backup_active(*, wedding: Wedding) -> bool:
    """A backup of the wedding is queued or running and can still finish. A row whose RQ job died for good (its
    worker lost with no retry left, Redis emptied) must not hold the wedding's next backup back forever; the
    stuck-job alert reports it."""
    jobs = BackupJob.objects.filter(wedding=wedding, kind__in=_BACKUP_KINDS,
                                    status__in=[BackupJob.Status.QUEUED, BackupJob.Status.RUNNING])
    return any(backup_alive(job) for job in jobs)


def backup_alive(job: BackupJob, *, stale_after: dt.timedelta = ACTIVE_JOB_STALE) -> bool:
    """Can this job still finish? The RQ job the engine records as carrying it on says so (however long it has run);
    before one is recorded (it is enqueued when the transaction commits), only a young row counts."""
    if not job.rq_job_id:
        return timezone.now() - job.created < stale_after
    try:
        status = Job.fetch(job.rq_job_id, connection=django_rq.get_connection(job.queue)).get_status()
    except NoSuchJobError:
        return False
    except (KeyError, redis.RedisError):  # Redis away or an unknown queue: not evidence that the job is dead
        return True
    return status in RQ_ALIVE


def wedding_scan(*, wedding: Wedding, quiet: float | None = None, catch_up: bool = False,
                 backup: bool = True) -> ImportReport:
    """A full rescan with the quiet rule (files modified within the quiet period are left pending), then (``backup``)
    a backup when anything was taken. ``catch_up``: also when files catalogued earlier are still unprotected and no
    backup is active (a watcher killed between cataloguing and starting the backup, a failed job)."""
    report = wedding_rescan(wedding=wedding, quiet_seconds=quiet_seconds() if quiet is None else quiet)
    if backup and (report.taken or (catch_up and unprotected_waiting(wedding=wedding)
                                    and not backup_active(wedding=wedding))):
        backup_ensure(wedding=wedding)
    return report


def unprotected_waiting(*, wedding: Wedding) -> bool:
    """Some current file of the wedding has not reached the policy yet."""
    return Asset.objects.filter(wedding=wedding, missing_since__isnull=True, protected_at__isnull=True).exists()


def paths_take(*, wedding: Wedding, relative_paths: Iterable[str], backup: bool = True) -> ImportReport:
    """Catalogue these settled files of the wedding (in batches), then (``backup``) one backup if anything was new
    and none is queued."""
    paths = list(relative_paths)
    total = ImportReport(wedding)
    for i in range(0, len(paths), TAKE_BATCH):
        part = wedding_ingest_paths(wedding=wedding, relative_paths=paths[i:i + TAKE_BATCH])
        for name in ("added", "changed", "unchanged", "removed", "problems", "pending"):
            getattr(total, name).extend(getattr(part, name))
    if backup and total.taken:
        backup_ensure(wedding=wedding)
    return total


def sources_scan(*, plan: str = "") -> dict:
    """Rescan every watched wedding of ``plan`` (blank: all) that is not wedding-day critical (the watcher has
    those), take what settled, back up where something was taken, and register the inbox's new weddings. Never
    raises for one wedding: an unreadable folder or a failed scan is in ``problems`` (slug -> why)."""
    counts = {"weddings": 0, "added": 0, "changed": 0, "removed": 0, "pending": 0, "unreadable_files": 0,
              "backups_started": 0, "problems": {}}
    for wedding in watched_weddings(critical=False, plan=plan).iterator(chunk_size=200):
        problem = source_problem(wedding)
        if problem:
            counts["problems"][wedding.slug] = f"source folder {wedding.source_path}: {problem}"
            continue
        before = _queued_backups(wedding)
        try:
            report = wedding_scan(wedding=wedding, catch_up=True)
        except Exception as exc:  # one wedding's failure must not stop the others' scans
            log.exception("scanning the source of wedding %s failed", wedding.pk)
            counts["problems"][wedding.slug] = f"scan failed: {type(exc).__name__}: {exc}"
            continue
        counts["weddings"] += 1
        for name in ("added", "changed", "removed", "pending"):
            counts[name] += len(getattr(report, name))
        counts["unreadable_files"] += len(report.problems)
        counts["backups_started"] += _queued_backups(wedding) - before
    counts["inbox"] = inbox_scan()
    return counts


def _queued_backups(wedding: Wedding) -> int:
    return BackupJob.objects.filter(wedding=wedding, kind__in=_BACKUP_KINDS, status=BackupJob.Status.QUEUED).count()


def _state(path: Path) -> tuple:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return ()
    except OSError as exc:  # unreadable right now: a state of its own, settled like any other
        return ("error", exc.errno)
    # ctime too: a file rewritten in place with its old mtime put back (a copy tool keeping the camera's times)
    # changes only its ctime, which no one can set.
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class QuietTracker:
    """The paths of one folder that changed, each due once its state (size, mtime and ctime, or gone) has held for
    ``quiet`` seconds. Time is this process's monotonic clock, so a change of the wall clock moves nothing, and
    mtimes are only compared, never read as times: a camera's clock a day ahead or a year behind changes nothing.
    Memory: one small entry per changed path, dropped once it is due."""

    def __init__(self, root: Path, *, quiet: float, clock: Callable[[], float] = time.monotonic):
        self.root, self.quiet, self._clock = Path(root), quiet, clock
        self._paths: dict[str, tuple[tuple, float]] = {}

    def __len__(self) -> int:
        return len(self._paths)

    def touch(self, relative_path: str) -> None:
        """Something happened to this path: watch it until it settles (a path already watched keeps its clock)."""
        self._paths.setdefault(relative_path, (_UNSEEN, 0.0))

    def due(self, *, limit: int = TAKE_BATCH) -> list[str]:
        """Stat every watched path once; those unchanged for the quiet period are returned (and forgotten)."""
        now, out = self._clock(), []
        for rel, (state, since) in list(self._paths.items()):
            current = _state(self.root / rel)
            if current != state:
                self._paths[rel] = (current, now)
            elif now - since >= self.quiet and len(out) < limit:
                del self._paths[rel]
                out.append(rel)
        return out


def relative_to_root(path: str | bytes, root: str) -> str | None:
    """A watchdog event's path inside ``root``, as the catalogue names it; None for the root itself or outside."""
    path = os.fsdecode(path)
    rel = os.path.relpath(path, root)
    if rel == "." or rel.startswith(".."):
        return None
    return Path(rel).as_posix()
