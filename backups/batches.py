"""One upload batch: the planned replicas of up to BATCH_SIZE assets, uploaded by a few threads; when a provider
goes down meanwhile, the batch plans its assets not started yet again (within a second) so their copies go to
healthy alternates in this batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections
from django.db.models import F

from providers.breaker import breaker_allows
from providers.models import Provider

from .limits import ProviderSlots
from .models import Asset, BackupJob, Replica
from .planning import plan_assets
from .uploads import BatchBook, asset_upload

log = logging.getLogger(__name__)
# A batch is one RQ job, so one fork of a work horse: each costs ~0.15 CPU-s, so batches are large (17 forks
# for a 400-photo wedding cost ~2 of its ~12 CPU-s), yet bounded in bytes so each ends well within the
# job timeout and several workers share a wedding. A running batch still routes around an outage within a
# second (BatchTargets), so larger batches do not slow failover.
BATCH_SIZE = 100
BATCH_BYTES = 1024**3
OUTAGE_CHECK_SECONDS = 1.0  # how stale a batch's view of which providers are down may be
FLUSH_EVERY = 8  # assets between two bulk writes of verified replicas and job counters


def batched(assets: list[tuple[int, int]], *, count: int | None = None, size: int | None = None) -> list[list[int]]:
    """Asset ids in batches of at most ``count`` assets and ``size`` bytes (a bigger asset goes alone)."""
    count, size = count or BATCH_SIZE, size or BATCH_BYTES
    out: list[list[int]] = []
    current: list[int] = []
    total = 0
    for pk, asset_size in assets:
        if current and (len(current) >= count or total + asset_size > size):
            out.append(current)
            current, total = [], 0
        current.append(pk)
        total += asset_size
    if current:
        out.append(current)
    return out


def batch_upload(*, job: BackupJob, asset_ids: list[int]) -> dict:
    """Upload every planned replica of these assets.

    ``WEDBACKUP_ASSET_THREADS`` assets at a time; each asset is read once and put to all of its targets
    (``uploads.asset_upload``: a small file's one after another, a large file's at once from one read).
    Verified rows and the job's counters are written in bulk every few assets (``uploads.BatchBook``). Each
    thread keeps its database connection for the whole batch and closes it at the end (not after every
    upload). The batch keeps the provider slots it took from one file to the next (``limits.ProviderSlots``;
    given back once idle) and reads the breakers at most once a second (``Outages``): no Redis round trip
    per file.
    """
    replicas = _batch_replicas(asset_ids)
    fresh = _redirect(job, asset_ids)
    replicas = replicas if fresh is None else fresh
    plan = BatchTargets(job, asset_ids, replicas, Outages(OUTAGE_CHECK_SECONDS))
    book = BatchBook(job, flush_every=FLUSH_EVERY)
    slots = ProviderSlots()
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for asset_id in plan.asset_order():
        work.put(asset_id)
    errors: list[BaseException] = []

    def asset_worker(pool: ThreadPoolExecutor) -> None:
        try:
            while not errors:
                try:
                    asset_id = work.get_nowait()
                except queue.Empty:
                    return
                targets = plan.targets(asset_id)
                down = plan.outages.down({r.provider_id for r in targets})
                ok = (asset_upload(targets[0].asset, targets, book=book, pool=pool, slots=slots, down=down)
                      if targets else {})
                book.asset_finished(bool(ok) and all(ok.values()))  # nothing left to upload is not "done"
        except BaseException as exc:  # re-raised below: RQ records the job as failed, the finisher still runs
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connection, once per batch

    asset_threads = settings.WEDBACKUP_ASSET_THREADS
    try:
        with ThreadPoolExecutor(max_workers=asset_threads * 3, thread_name_prefix="target") as pool:
            threads = [threading.Thread(target=asset_worker, args=(pool,), name=f"asset-{i}")
                       for i in range(min(asset_threads, len(plan.asset_order())))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        slots.close()
    book.close()
    if errors:
        raise errors[0]
    return {"done": book.totals["done"], "failed": book.totals["failed"]}


def _batch_replicas(asset_ids: list[int]) -> list[Replica]:
    return list(
        Replica.objects.filter(asset_id__in=asset_ids, status__in=[Replica.Status.PLANNED, Replica.Status.UPLOADING])
        .select_related("asset__wedding", "provider").order_by("asset_id", "pk")
    )


def providers_down(provider_ids: set[int]) -> set[int]:
    """Those of these providers that take no work now: marked down or draining, or their breaker is open."""
    accepting = {p.pk for p in Provider.objects.filter(pk__in=provider_ids) if p.accepts_work}
    return {pid for pid in provider_ids if pid not in accepting or not breaker_allows(pid)}


class Outages:
    """``providers_down`` for a batch's asset threads, looked up at most once per ``interval`` seconds."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self._lock = threading.Lock()
        self._at = -interval
        self._known: set[int] = set()
        self._down: set[int] = set()

    def down(self, provider_ids: set[int]) -> set[int]:
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self.interval or not provider_ids <= self._known:
                self._known |= provider_ids
                self._down, self._at = providers_down(self._known), now
            return self._down & provider_ids


class BatchTargets:
    """Each asset's replicas to upload in one batch. When one of the batch's providers goes down (looked up
    through ``outages``), the whole batch is planned again once for it, and the assets not started yet get
    their new targets; those already running finish as they are (the next round covers them)."""

    def __init__(self, job: BackupJob, asset_ids: list[int], replicas: list[Replica], outages: Outages):
        self.job, self.asset_ids, self.outages = job, asset_ids, outages
        self._lock = threading.Lock()
        self._handled: set[int] = set()
        self._by_asset = self._group(replicas)
        self._order = list(self._by_asset)

    @staticmethod
    def _group(replicas: list[Replica]) -> dict[int, list[Replica]]:
        by_asset: dict[int, list[Replica]] = {}
        for r in replicas:
            by_asset.setdefault(r.asset_id, []).append(r)
        return by_asset

    def asset_order(self) -> list[int]:
        return self._order

    def targets(self, asset_id: int) -> list[Replica]:
        with self._lock:
            current = self._by_asset.get(asset_id, [])
        down = self.outages.down({r.provider_id for r in current})
        if down - self._handled:
            with self._lock:
                new = down - self._handled
                if new:
                    self._handled |= new
                    fresh = _redirect(self.job, self.asset_ids, down=new)
                    if fresh is not None:
                        self._by_asset = self._group(fresh)
                current = self._by_asset.get(asset_id, [])
        return current


def _redirect(job: BackupJob, asset_ids: list[int], *, down: set[int] | None = None) -> list[Replica] | None:
    """A provider went down after the round was planned: plan these assets that had work there again now, so
    their copies go to healthy alternates in this batch rather than after the whole round (minutes for a
    large wedding). Returns their replicas to upload, re-read, or None when nothing was planned again.
    ``down``: the providers already known to be down (looked up otherwise)."""
    unfinished = list(Replica.objects.filter(asset_id__in=asset_ids).exclude(status=Replica.Status.VERIFIED)
                      .values_list("asset_id", "provider_id"))
    pids = {pid for _, pid in unfinished}
    if not pids:
        return None
    down = (down & pids) if down is not None else providers_down(pids)
    if not down:
        return None
    before = set(Replica.objects.filter(asset_id__in=asset_ids).values_list("asset_id", "provider_id"))
    plan_assets(job, Asset.objects.filter(pk__in={aid for aid, pid in unfinished if pid in down},
                                          missing_since__isnull=True))
    replicas = _batch_replicas(asset_ids)
    added = [r for r in replicas if (r.asset_id, r.provider_id) not in before]
    if added:
        BackupJob.objects.filter(pk=job.pk).update(bytes_planned=F("bytes_planned") + sum(r.asset.size for r in added))
        log.info("job %s: providers %s down; %s copies redirected within the batch", job.pk, sorted(down), len(added))
    return replicas
