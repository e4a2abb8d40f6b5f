"""The source watcher (``manage.py watch_sources``): wedding-day-critical weddings' folders watched in real time.

One watchdog Observer (inotify on Linux) reports changed paths; each wedding's ``QuietTracker`` decides when a
file has settled, and only those are catalogued (``paths_take``), then backed up. A full rescan with the quiet rule
runs when a wedding is taken on (catching up on whatever happened while nobody watched), every
WEDBACKUP_WATCH_RESCAN_SECONDS (missed events, network mounts) and after a folder was created, moved or deleted
(inotify does not describe what such a folder held). The process holds no state that matters: killed at any
line, the next start rescans and takes what is new.

Several watchers may run (on several machines): each wedding has one owner, through a Redis lease renewed every
third of its time; a watcher that dies stops renewing, and after the lease time another one takes the wedding on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import django_rq
from django.conf import settings
from django.db import close_old_connections
from watchdog.events import (
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from backups.models import Wedding
from backups.tasks import backup_start

from .inbox import inbox_scan
from .leases import lease_acquire, lease_release, lease_renew
from .sources import (
    TAKE_BATCH,
    QuietTracker,
    backup_active,
    paths_take,
    relative_to_root,
    source_problem,
    unprotected_waiting,
    watched_weddings,
    wedding_scan,
)

log = logging.getLogger(__name__)
LEASE_PREFIX = "wedbackup:watch"
_IGNORED = {EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE}


def lease_key(wedding_id: int) -> str:
    return f"{LEASE_PREFIX}:wedding:{wedding_id}"


INBOX_LEASE = f"{LEASE_PREFIX}:inbox"


@dataclass
class Watched:
    """One wedding this watcher owns: its folder's watch, the paths that changed and when to rescan."""

    wedding_id: int
    root: str
    tracker: QuietTracker
    next_rescan: float = 0.0  # monotonic; 0: at once
    caught_up: bool = False  # the first rescan after taking the wedding on also backs up what is unprotected
    backup_owed: bool = False  # files were taken while a backup ran: one more starts when it ends
    watch: ObservedWatch | None = None
    changed: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Events(FileSystemEventHandler):
    """Runs in the observer's thread: only records paths; the watcher's loop does the work."""

    def __init__(self, watched: Watched):
        self.watched = watched

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED:
            return
        w = self.watched
        if event.is_directory:
            # A folder's own "modified" is every file created in it; a folder created, moved or deleted needs a
            # rescan: inotify does not list what it held.
            if event.event_type != EVENT_TYPE_MODIFIED:
                w.next_rescan = 0.0
            return
        with w.lock:
            for path in (event.src_path, getattr(event, "dest_path", "")):
                rel = relative_to_root(path, w.root) if path else None
                if rel:
                    w.changed.add(rel)


class SourceWatcher:
    """Call ``step()`` in a loop (``run`` does), ``close()`` at the end (releases the leases at once)."""

    def __init__(self, *, owner: str = "", quiet: float | None = None, rescan: float | None = None,
                 refresh: float | None = None, lease: float | None = None):
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.quiet = settings.WEDBACKUP_WATCH_QUIET_SECONDS if quiet is None else quiet
        self.rescan = settings.WEDBACKUP_WATCH_RESCAN_SECONDS if rescan is None else rescan
        self.refresh = settings.WEDBACKUP_WATCH_REFRESH_SECONDS if refresh is None else refresh
        self.lease = settings.WEDBACKUP_WATCH_LEASE_SECONDS if lease is None else lease
        self.conn = django_rq.get_connection("default")
        self.observer = Observer()
        self.observer.daemon = True
        self.observer.start()
        self.weddings: dict[int, Watched] = {}
        self._next_refresh = self._next_renew = 0.0
        self._problems: dict[int, str] = {}

    # -- the loop -----------------------------------------------------------------------------------------------
    def run(self, *, stop: threading.Event, tick: float = 0.25) -> None:
        try:
            while not stop.is_set():
                self.step()
                stop.wait(tick)
        finally:
            self.close()

    def step(self) -> None:
        """One pass: renew or refresh ownership when due, take settled files, rescan where due. Errors are
        logged, never fatal: the next pass (or the next rescan) repairs what one missed."""
        close_old_connections()  # a long-lived process: a dropped database connection is reopened
        now = time.monotonic()
        try:  # the next times are set first: a database that is down is retried per period, not per pass
            if now >= self._next_renew:
                self._next_renew = now + self.lease / 3
                self._renew()
            if now >= self._next_refresh:
                self._next_refresh = now + self.refresh
                self._refresh()
        except Exception:
            log.exception("watcher: refreshing the watched weddings failed")
        for watched in list(self.weddings.values()):
            try:
                self._work(watched)
            except Exception:
                log.exception("watcher: wedding %s failed this pass; retried on the next", watched.wedding_id)
                watched.next_rescan = time.monotonic() + self.quiet

    def close(self) -> None:
        for wedding_id in list(self.weddings):
            self._drop(wedding_id)
        with contextlib.suppress(Exception):
            lease_release(conn=self.conn, key=INBOX_LEASE, owner=self.owner)
        self.observer.stop()
        self.observer.join(timeout=5)

    # -- ownership -------------------------------------------------------------------------------------------------
    def _renew_due(self) -> None:
        now = time.monotonic()
        if now >= self._next_renew:
            self._next_renew = now + self.lease / 3
            self._renew()

    def _renew(self) -> None:
        for wedding_id in list(self.weddings):
            if not lease_renew(conn=self.conn, key=lease_key(wedding_id), owner=self.owner, seconds=self.lease):
                log.warning("watcher %s: lost wedding %s to another watcher", self.owner, wedding_id)
                self._drop(wedding_id, release=False)

    def _refresh(self) -> None:
        wanted = {w.pk: w for w in watched_weddings(critical=True).only("pk", "source_path", "date", "slug")}
        for wedding_id, watched in list(self.weddings.items()):
            if wedding_id not in wanted or wanted[wedding_id].source_path != watched.root:
                self._drop(wedding_id)
        for wedding_id, wedding in wanted.items():
            if wedding_id not in self.weddings:
                self._adopt(wedding)
        if settings.WEDBACKUP_INBOX_ROOT and lease_acquire(conn=self.conn, key=INBOX_LEASE, owner=self.owner,
                                                           seconds=max(self.lease, self.refresh * 2)):
            result = inbox_scan(quiet=self.quiet)
            if result["problem"] and self._problems.get(0) != result["problem"]:
                log.warning("watcher: %s", result["problem"])
            self._problems[0] = result["problem"]

    def _adopt(self, wedding: Wedding) -> None:
        problem = source_problem(wedding)
        if problem:
            if self._problems.get(wedding.pk) != problem:  # said once, not every refresh; the alert says the rest
                log.warning("watcher: wedding %s not watched: %s: %s", wedding.pk, wedding.source_path, problem)
            self._problems[wedding.pk] = problem
            return
        self._problems.pop(wedding.pk, None)
        if not lease_acquire(conn=self.conn, key=lease_key(wedding.pk), owner=self.owner, seconds=self.lease):
            return  # another live watcher owns it
        watched = Watched(wedding.pk, wedding.source_path, QuietTracker(wedding.source_path, quiet=self.quiet))
        try:  # watch first, then the catch-up rescan: nothing that happens in between is missed
            watched.watch = self.observer.schedule(_Events(watched), wedding.source_path, recursive=True)
        except OSError as exc:  # e.g. the inotify watch limit: the periodic rescan still protects it
            log.warning("watcher: no live events for %s (%s); rescanning every %ss", wedding.source_path, exc,
                        self.rescan)
        self.weddings[wedding.pk] = watched
        log.info("watcher %s: watching wedding %s at %s", self.owner, wedding.pk, wedding.source_path)

    def _drop(self, wedding_id: int, *, release: bool = True) -> None:
        watched = self.weddings.pop(wedding_id, None)
        if watched and watched.watch is not None:
            with contextlib.suppress(Exception):
                self.observer.unschedule(watched.watch)
        if release:
            with contextlib.suppress(Exception):
                lease_release(conn=self.conn, key=lease_key(wedding_id), owner=self.owner)

    # -- work ----------------------------------------------------------------------------------------------------
    def _work(self, watched: Watched) -> None:
        with watched.lock:
            changed, watched.changed = watched.changed, set()
        for rel in changed:
            watched.tracker.touch(rel)
        wedding = None
        due = watched.tracker.due()
        if due:
            wedding = Wedding.objects.get(pk=watched.wedding_id)
            for i in range(0, len(due), TAKE_BATCH):  # a card dump takes long: the lease is renewed as it goes
                report = paths_take(wedding=wedding, relative_paths=due[i:i + TAKE_BATCH], backup=False)
                watched.backup_owed |= bool(report.taken)
                for problem in report.problems:
                    if problem.retry:  # it changed while read: once it settles again
                        watched.tracker.touch(problem.relative_path)
                self._renew_due()
                if watched.wedding_id not in self.weddings:
                    return  # lost meanwhile: its new owner rescans and backs up what we took
        # One backup at a time per wedding: a running one plans files taken meanwhile in its next round, and
        # overlapping jobs would plan the same files twice; what it misses, the next one (started when it ends) takes.
        if watched.backup_owed:
            wedding = wedding or Wedding.objects.get(pk=watched.wedding_id)
            if not backup_active(wedding=wedding):
                backup_start(wedding=wedding)
                watched.backup_owed = False
        if time.monotonic() >= watched.next_rescan:
            watched.next_rescan = time.monotonic() + self.rescan
            wedding = wedding or Wedding.objects.get(pk=watched.wedding_id)
            if source_problem(wedding):
                return  # reported by the alerts; a vanished folder is never read as "every file deleted"
            report = wedding_scan(wedding=wedding, quiet=self.quiet, backup=False)
            catch_up = not watched.caught_up and unprotected_waiting(wedding=wedding)
            watched.backup_owed |= bool(report.taken) or catch_up
            watched.caught_up = True
            for rel in report.pending:
                watched.tracker.touch(rel)
            for problem in report.problems:
                if problem.retry:
                    watched.tracker.touch(problem.relative_path)
