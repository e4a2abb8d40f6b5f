"""Scrubbing: a rolling deep verification. Each run reads back and hashes a slice of every verified copy so that
each one is re-read within the policy's ``scrub_days`` (the rule is in ``scrub_plan``); archived classes are
checked by their metadata only (HEAD: size and the provider's checksum), never rehydrated.

A damaged copy (bytes, size or checksum differ, or gone) is marked failed and its wedding's repair starts, in one
transaction, through the same signal verify uses; a ``SCRUB_MISMATCH`` alert opens per wedding and resolves once
no copy the scrub failed is left and every copy repaired since has been read back again. A provider that cannot
be reached is skipped for the rest of the run and reported, never condemned.

Safe as an RQ job: one run at a time (a Redis lock, renewed after every copy), progress written every chunk (a copy
read OK is stamped, a damaged one is marked with its repair in one transaction). Chunks are sized in bytes
(WEDBACKUP_SCRUB_CHUNK_BYTES, and at most ``CHUNK`` copies), so a chunk of large videos is as bounded as one of
photos and a crash loses at most a chunk's reads. The time budget is checked before every copy: a run that reaches
it stops at the next copy, writes what it read, and the next run goes on with the copies not read (those read are
stamped and no longer due).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import django_rq
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone
from redis.exceptions import LockError

from backups.damage import replica_mark_damaged
from backups.integrity import replica_check
from backups.models import Replica, Wedding
from backups.signals import copies_damaged
from backups.snapshots import wedding_refresh
from providers.backends import backend_for
from providers.backends.base import Backend, NeedsRestore, ProviderError
from providers.models import Provider

from .alerts import alert_raise, alert_resolve
from .models import Alert, ScrubRun
from .scrub_plan import copy_is_archived, readable_providers, scrub_candidates, slice_ids, slice_plan

log = logging.getLogger(__name__)
LOCK_KEY = "wedbackup:scrub-lock"
LOCK_SECONDS = 3600
RUN_SECONDS = 45 * 60  # under the RQ job timeout; what is left stays due and the next run catches up
CHUNK = 200  # copies per chunk at most (one query); the chunk's bytes are bounded by WEDBACKUP_SCRUB_CHUNK_BYTES
READ_THREADS = 4  # copies read at once (streams of a part each: memory stays bounded)
DETAIL_LINES = 50
ALERT_PREFIX = "scrub_mismatch:wedding:"
ALERT_SLACK = dt.timedelta(days=1)  # a run started this long before the alert it raised (runs are bounded)


@dataclass
class _Tally:
    checked: int = 0
    bytes_read: int = 0
    metadata_only: int = 0
    mismatches: int = 0
    repairs: int = 0
    mismatched: list[str] = field(default_factory=list)
    unreachable: dict[int, str] = field(default_factory=dict)  # provider id -> first error
    ok: list[int] = field(default_factory=list)  # read OK, not yet stamped
    damaged: dict[int, list[tuple[Replica, str]]] = field(default_factory=lambda: defaultdict(list))
    marked: list[int] = field(default_factory=list)  # copies this run marked failed (kept in the run's detail)
    alerted: set[int] = field(default_factory=set)  # weddings found damaged by this run


class _Budget:
    """The run's time budget, checked by the reader threads before each copy: the first copy is always read (every
    run makes progress), none is started once the budget is spent."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self._clock, self._deadline, self._lock = clock, clock() + seconds, threading.Lock()
        self.started, self.spent = 0, False

    def take(self) -> bool:
        with self._lock:
            if self.started and (self.spent or self._clock() >= self._deadline):
                self.spent = True
                return False
            self.started += 1
            return True


def chunk_bytes() -> int:
    return max(1, int(getattr(settings, "WEDBACKUP_SCRUB_CHUNK_BYTES", 1 << 30)))


def scrub_chunks(*, ids: list[int], sizes: dict[int, int], limit: int, most: int = CHUNK) -> Iterator[list[int]]:
    """``ids`` in order, cut into chunks of at most ``limit`` bytes (a larger copy is a chunk of its own) and at most
    ``most`` copies."""
    chunk, total = [], 0
    for pk in ids:
        size = sizes.get(pk, 0)
        if chunk and (total + size > limit or len(chunk) >= most):
            yield chunk
            chunk, total = [], 0
        chunk.append(pk)
        total += size
    if chunk:
        yield chunk


def _sizes(ids: list[int]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for first in range(0, len(ids), 5000):
        sizes.update(Replica.objects.filter(pk__in=ids[first:first + 5000]).values_list("pk", "size"))
    return sizes


def scrub_run(*, now: dt.datetime | None = None, budget_seconds: float = RUN_SECONDS) -> ScrubRun:
    """Read this run's slice of the verified copies (``now`` is the run's clock: tests move it forward)."""
    now = now or timezone.now()
    # Not thread-local: the lock is renewed after each copy, whichever thread read it.
    lock = django_rq.get_connection("default").lock(LOCK_KEY, timeout=LOCK_SECONDS, thread_local=False)
    if not lock.acquire(blocking=False):
        running = ScrubRun.objects.filter(finished_at__isnull=True).first()
        return running or ScrubRun.objects.create(started_at=now, finished_at=now,
                                                  detail={"skipped": "another scrub run holds the lock"})
    try:
        return _scrub(now=now, budget_seconds=budget_seconds, lock=lock)
    finally:
        with contextlib.suppress(LockError):  # expired while we ran: nothing of ours to release
            lock.release()


def _scrub(*, now: dt.datetime, budget_seconds: float, lock) -> ScrubRun:
    _close_abandoned()
    providers = readable_providers()
    skipped = {p.name: p.status if p.status == Provider.Status.DOWN else "breaker open"
               for p in Provider.objects.filter(enabled=True).exclude(pk__in=[p.pk for p in providers])}
    run = ScrubRun.objects.create(started_at=now)
    candidates = scrub_candidates(providers=providers)
    plan = slice_plan(candidates=candidates, now=now)
    rechecks = _rechecks(providers=providers)
    ids = list(dict.fromkeys([*rechecks, *slice_ids(candidates=candidates, plan=plan, now=now, providers=providers)]))
    tally, backends = _Tally(), {p.pk: backend_for(p) for p in providers}
    started, budget, stopped = time.monotonic(), _Budget(budget_seconds), ""
    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="scrub-read") as pool:
        for chunk in scrub_chunks(ids=ids, sizes=_sizes(ids), limit=chunk_bytes()):
            rows = {r.pk: r for r in Replica.objects.filter(pk__in=chunk, status=Replica.Status.VERIFIED)
                    .select_related("provider", "asset__wedding")}
            skip = set(tally.unreachable)
            todo = [rows[pk] for pk in chunk if pk in rows and rows[pk].provider_id not in skip]
            futures = [pool.submit(_read, r, backend=backends[r.provider_id], budget=budget) for r in todo]
            for future in as_completed(futures):
                _count(future.result(), tally=tally)
                lock.extend(LOCK_SECONDS, replace_ttl=True)
            _flush(run=run, tally=tally, now=now)
            if budget.spent:
                stopped = f"time budget of {budget_seconds:.0f} s reached after {tally.checked} of {len(ids)} copies"
                break
    _resolve(tally=tally)
    finished = now + dt.timedelta(seconds=time.monotonic() - started)
    by_id = {p.pk: p.name for p in providers}
    run.detail = {
        "cycle_days": plan.cycle / dt.timedelta(days=1), "period_hours": plan.period / dt.timedelta(hours=1),
        "slice": plan.size, "due_within_cycle": plan.due, "due_now": plan.due_now, "rechecked": len(rechecks),
        "skipped_providers": skipped, "not_read": len(ids) - tally.checked,
        "unreachable": {by_id.get(pid, str(pid)): error for pid, error in tally.unreachable.items()},
        "mismatched": tally.mismatched[:DETAIL_LINES], "damaged": tally.marked, "stopped": stopped,
        "progress": scrub_progress(cycle=plan.cycle, now=finished),
    }
    run.finished_at = finished
    run.save(update_fields=["detail", "finished_at"])
    run.refresh_from_db()
    return run


@dataclass(frozen=True)
class _Outcome:
    replica: Replica
    archived: bool
    problem: str  # '' when the copy is what we recorded
    error: str  # the provider could not be read
    skipped: bool = False  # not read: the run's time budget was spent


def _read(replica: Replica, *, backend: Backend, budget: _Budget) -> _Outcome:
    """One copy read back (or HEADed, when archived), in a reader thread: no database, no shared state."""
    archived = copy_is_archived(replica)
    if not budget.take():
        return _Outcome(replica, archived, "", "", skipped=True)
    try:
        try:
            problem = replica_check(replica, backend, deep=not archived)
        except NeedsRestore:  # moved to an archive class by the provider (a lifecycle rule): metadata only
            archived = True
            problem = replica_check(replica, backend, deep=False)
    except ProviderError as exc:
        return _Outcome(replica, archived, "", str(exc)[:500] or type(exc).__name__)
    return _Outcome(replica, archived, problem, "")


def _count(outcome: _Outcome, *, tally: _Tally) -> None:
    replica = outcome.replica
    if outcome.skipped or replica.provider_id in tally.unreachable:
        return  # read while another thread found its provider unreachable: that provider waits for the next run
    if outcome.error:
        log.warning("scrub: %s unreachable, skipped for this run: %s", replica.provider.name, outcome.error)
        tally.unreachable[replica.provider_id] = outcome.error
        return
    tally.checked += 1
    tally.metadata_only += outcome.archived
    tally.bytes_read += 0 if outcome.archived else replica.size
    if outcome.problem:
        tally.damaged[replica.asset.wedding_id].append((replica, outcome.problem))
    else:
        tally.ok.append(replica.pk)


def _flush(*, run: ScrubRun, tally: _Tally, now: dt.datetime) -> None:
    """Stamp the copies read OK, mark the damaged ones and start their repair, write the run's counters."""
    if tally.ok:
        Replica.objects.filter(pk__in=tally.ok, status=Replica.Status.VERIFIED).update(scrubbed_at=now)
        tally.ok = []
    for found in tally.damaged.values():
        _damaged(found=found, tally=tally)
    tally.damaged.clear()
    ScrubRun.objects.filter(pk=run.pk).update(
        replicas_checked=tally.checked, bytes_read=tally.bytes_read, metadata_only=tally.metadata_only,
        mismatches=tally.mismatches, repairs_started=tally.repairs, detail={"damaged": tally.marked})


def _damaged(*, found: list[tuple[Replica, str]], tally: _Tally) -> None:
    wedding = found[0][0].asset.wedding
    with transaction.atomic():
        # Only the copy we read is damage: one pruned, moved or uploaded again while we read it is not.
        marked = [(r, why) for r, why in found if replica_mark_damaged(replica=r, why=f"scrub: {why}")]
        if not marked:
            return
        jobs = [job for _, job in copies_damaged.send(sender=Wedding, wedding=wedding, requested_by=None) if job]
    lines = [f"{r.provider.name}: {r.object_key}: {why}" for r, why in marked]
    tally.mismatches += len(marked)
    tally.repairs += len(jobs)
    tally.mismatched.extend(lines)
    tally.marked.extend(r.pk for r, _ in marked)
    tally.alerted.add(wedding.pk)
    wedding_refresh(wedding)
    repair = f"repair job {jobs[0].pk} started" if jobs else "no repair job could be started"
    alert_raise(key=f"{ALERT_PREFIX}{wedding.pk}", kind=Alert.Kind.SCRUB_MISMATCH,
                subject=f"Scrub found {len(marked)} damaged cop{'y' if len(marked) == 1 else 'ies'} of {wedding}",
                detail="\n".join([*lines[:20], repair]))


def _open_alerts() -> dict[int, Alert]:
    alerts = Alert.objects.filter(kind=Alert.Kind.SCRUB_MISMATCH, resolved_at__isnull=True,
                                  key__startswith=ALERT_PREFIX)
    return {int(a.key.removeprefix(ALERT_PREFIX)): a for a in alerts if a.key.removeprefix(ALERT_PREFIX).isdigit()}


def _unread_repairs(wedding_id: int, alert: Alert):
    """Copies of the wedding verified again since the alert opened (repaired) and not read back since."""
    return Replica.objects.filter(asset__wedding_id=wedding_id, status=Replica.Status.VERIFIED,
                                  verified_at__gte=alert.opened_at).filter(
        Q(scrubbed_at__isnull=True) | Q(scrubbed_at__lt=F("verified_at")))


def _rechecks(*, providers: list[Provider]) -> list[int]:
    """Repaired copies of weddings with an open scrub alert: read first, so the alert can resolve."""
    ids: list[int] = []
    for wedding_id, alert in _open_alerts().items():
        ids.extend(_unread_repairs(wedding_id, alert).filter(provider__in=providers).values_list("pk", flat=True))
    return ids


def _resolve(*, tally: _Tally) -> None:
    """An alert resolves when every copy the scrub found damaged since it opened is verified again (or gone) and
    every copy repaired since has been read back by a scrub."""
    for wedding_id, alert in _open_alerts().items():
        if wedding_id in tally.alerted:
            continue
        damaged = [pk for detail in ScrubRun.objects.filter(started_at__gte=alert.opened_at - ALERT_SLACK)
                   .values_list("detail", flat=True) for pk in detail.get("damaged", [])]
        unrepaired = (Replica.objects.filter(pk__in=damaged, asset__wedding_id=wedding_id)
                      .exclude(status__in=[Replica.Status.VERIFIED, Replica.Status.DELETED]).exists())
        if not unrepaired and not _unread_repairs(wedding_id, alert).exists():
            alert_resolve(key=alert.key)


def _close_abandoned() -> None:
    """Runs left unfinished by a crash (we hold the lock, so none is running): closed, their counters as they
    were last written."""
    for run in ScrubRun.objects.filter(finished_at__isnull=True):
        run.finished_at = run.started_at
        run.detail = {**run.detail, "interrupted": True}
        run.save(update_fields=["finished_at", "detail"])


def scrub_progress(*, cycle: dt.timedelta, now: dt.datetime) -> dict:
    """Fleet figures stored with each run for the console (one aggregate, never per page view): how many
    verified copies were read back within their cycle, and the last full cycle (the oldest read among them,
    None while some were never read)."""
    numbers = Replica.objects.filter(status=Replica.Status.VERIFIED).aggregate(
        verified=Count("pk"), within=Count("pk", filter=Q(scrubbed_at__gt=now - cycle)),
        never=Count("pk", filter=Q(scrubbed_at__isnull=True)), oldest=Min("scrubbed_at"))
    oldest = numbers["oldest"] if numbers["verified"] and not numbers["never"] else None
    return {"verified": numbers["verified"], "within_cycle": numbers["within"], "never": numbers["never"],
            "last_full_cycle": oldest.isoformat() if oldest else None}

