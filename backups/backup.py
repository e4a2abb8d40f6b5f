"""A wedding's backup: plan every asset, fan uploads out over workers in batches, finish to policy.

The job runs in rounds. A round plans what is missing (routing, with providers already holding a
verified copy kept), enqueues upload batches, and a finisher that runs when every batch has ended,
however it ended. The finisher checks the policy for every asset; anything still short is planned
again (failed providers avoided) in the next round, up to MAX_ROUNDS. So a worker killed mid-batch,
a provider that went down, or a revoked key all end the same way: the next round repairs it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import django_rq
from django.conf import settings
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone
from rq import Retry
from rq.job import Dependency

from providers.breaker import breaker_allows
from providers.models import Provider

from .layout import object_key
from .models import Asset, BackupJob, BackupPolicy, Replica, Wedding
from .placement import asset_traits, provider_states, rules_for, wedding_traits
from .protection import Copy, protection_gap
from .routing import route
from .uploads import BatchBook, asset_upload, replica_is_current

log = logging.getLogger(__name__)
# A batch is one RQ job, so one fork of a work horse: each costs ~0.15 CPU-s, so batches are large (17 forks
# for a 400-photo wedding cost ~2 of its ~12 CPU-s), yet bounded in bytes so each ends well within the
# job timeout and several workers share a wedding. A running batch still routes around an outage within a
# second (BatchTargets), so larger batches do not slow failover.
BATCH_SIZE = 100
BATCH_BYTES = 1024**3
OUTAGE_CHECK_SECONDS = 1.0  # how stale a batch's view of which providers are down may be
MAX_ROUNDS = 4
ASSET_THREADS = 4
FLUSH_EVERY = 8  # assets between two bulk writes of verified replicas and job counters
ABANDONED_RETRIES = 3


def backup_start(*, wedding: Wedding, requested_by=None, kind: str = BackupJob.Kind.BACKUP) -> BackupJob:
    """Create a backup (or repair) job and enqueue its first round once the transaction commits."""
    queue = "critical" if wedding.wedding_day_critical else "default"
    job = BackupJob.objects.create(wedding=wedding, kind=kind, queue=queue, requested_by=requested_by)
    transaction.on_commit(lambda: _enqueue(queue, "backups.tasks.backup_round", job.pk, 1))
    return job


def _enqueue(queue: str, func: str, *args, **kwargs):
    # Retries: a job whose worker was killed is abandoned; rq's registry cleanup re-queues it instead of
    # failing it for good, which matters for rounds and finishers (nothing depends on them). Every step is
    # idempotent.
    return django_rq.get_queue(queue).enqueue(func, *args, job_timeout=settings.RQ_QUEUES[queue]["DEFAULT_TIMEOUT"],
                                              retry=Retry(max=ABANDONED_RETRIES), **kwargs)


@dataclass
class RoundPlan:
    uploads: int
    bytes: int
    infeasible: dict[str, str]  # relative path -> why


def plan_round(job: BackupJob) -> RoundPlan:
    """Create or refresh the Replica rows each asset still needs. Idempotent."""
    return plan_assets(job, job.wedding.assets.filter(missing_since__isnull=True))


def plan_assets(job: BackupJob, assets) -> RoundPlan:
    """``plan_round`` for some of the wedding's assets (a queryset): the placements they still need."""
    wedding = job.wedding
    policy = BackupPolicy.default()
    rules = rules_for(wedding, policy)
    encrypt = bool(policy.for_plan(wedding.plan)["client_side_encryption"])
    traits = wedding_traits(wedding)
    states = provider_states()
    by_id = {s.id: s for s in states}
    # The plan we would make with every provider up: copies outside it are temporary (failover) copies.
    all_up = [replace(s, accepts_work=True, status="active") if s.status == "down" else s for s in states]
    outage = any(s.status == "down" for s in states)
    uploads, total, infeasible = 0, 0, {}
    new: list[Replica] = []
    for asset in assets.prefetch_related("replicas"):
        replicas = {r.provider_id: r for r in asset.replicas.all()}
        current = frozenset(pid for pid, r in replicas.items() if replica_is_current(r, asset))
        # Once every provider is up, temporary (failover) copies no longer count as keepers, so the
        # preferred placement is restored; the finisher then prunes them where policy allows.
        keep = current if outage else frozenset(pid for pid in current if not replicas[pid].temporary)
        # Providers that failed this asset for good are left out; transient failures are retried.
        usable = [s for s in states if not (s.id in replicas and replicas[s.id].permanent_failure)]
        plan = route(traits, asset_traits(asset), rules, usable, keep=keep)
        if not plan.feasible:
            infeasible[asset.relative_path] = plan.problem
            continue
        preferred = set(route(traits, asset_traits(asset), rules, all_up, keep=keep).provider_ids) if outage else None
        for placement in plan.placements:
            if placement.provider_id in current:
                held = replicas[placement.provider_id]
                if held.temporary and not outage:  # chosen again on merit: no longer temporary
                    Replica.objects.filter(pk=held.pk).update(temporary=False)
                continue
            r = replicas.get(placement.provider_id)
            temporary = preferred is not None and placement.provider_id not in preferred
            reason = f"{placement.reason} (temporary copy while a provider is down)" if temporary else placement.reason
            fields = {"object_key": object_key(asset), "storage_class": placement.storage_class,
                      "region": by_id[placement.provider_id].region, "reason": reason, "temporary": temporary,
                      "encrypted": encrypt}
            if r is None:
                new.append(Replica(asset=asset, provider_id=placement.provider_id, status=Replica.Status.PLANNED,
                                   **fields))
            else:
                Replica.objects.filter(pk=r.pk).update(status=Replica.Status.PLANNED, permanent_failure=False,
                                                       **fields)
            uploads += 1
            total += asset.size
    # New rows in few INSERTs (one per asset cost ~1 s for a 400-photo wedding, all before the first upload).
    # A row another planner made meanwhile (a batch re-planning for an outage while the failover job's round
    # plans the same wedding) is kept, not an error: the uploaders re-read the rows.
    Replica.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    return RoundPlan(uploads, total, infeasible)


def backup_round(job_id: int, round_no: int) -> None:
    """RQ entry: plan one round and fan it out; the finisher runs after every batch, failed or not."""
    job = BackupJob.objects.select_related("wedding").get(pk=job_id)
    if job.status == BackupJob.Status.CANCELLED:
        return
    if job.started_at is None:
        BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.RUNNING, started_at=timezone.now())
    plan = plan_round(job)
    pending = list(
        Asset.objects.filter(wedding=job.wedding, missing_since__isnull=True,
                             replicas__status=Replica.Status.PLANNED)
        .distinct().order_by("pk").values_list("pk", "size")
    )
    BackupJob.objects.filter(pk=job.pk).update(
        files_planned=F("files_planned") + len(pending), bytes_planned=F("bytes_planned") + plan.bytes,
        params={**job.params, "round": round_no, "infeasible": plan.infeasible},
    )
    batches = [_enqueue(job.queue, "backups.tasks.upload_batch", job.pk, ids) for ids in batched(pending)]
    depends = Dependency(jobs=batches, allow_failure=True) if batches else None
    _enqueue(job.queue, "backups.tasks.backup_finish", job.pk, round_no, depends_on=depends)


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


def upload_batch(job_id: int, asset_ids: list[int]) -> dict:
    """RQ entry: upload every planned replica of these assets.

    ASSET_THREADS assets at a time; each asset is read once and put to all of its targets in parallel
    (``uploads.asset_upload``). Verified rows and the job's counters are written in bulk every few assets
    (``uploads.BatchBook``). Each thread keeps its database connection for the whole batch and closes it
    at the end (not after every upload).
    """
    job = BackupJob.objects.select_related("wedding").get(pk=job_id)
    if job.status == BackupJob.Status.CANCELLED:
        return {"cancelled": True}
    replicas = _batch_replicas(asset_ids)
    fresh = _redirect(job, asset_ids)
    replicas = replicas if fresh is None else fresh
    plan = BatchTargets(job, asset_ids, replicas, Outages(OUTAGE_CHECK_SECONDS))
    book = BatchBook(job, flush_every=FLUSH_EVERY)
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
                ok = asset_upload(targets[0].asset, targets, book=book, pool=pool) if targets else {}
                book.asset_finished(bool(ok) and all(ok.values()))  # nothing left to upload is not "done"
        except BaseException as exc:  # re-raised below: RQ records the job as failed, the finisher still runs
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connection, once per batch

    with ThreadPoolExecutor(max_workers=ASSET_THREADS * 3, thread_name_prefix="target") as pool:
        threads = [threading.Thread(target=asset_worker, args=(pool,), name=f"asset-{i}")
                   for i in range(min(ASSET_THREADS, len(plan.asset_order())))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
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


def copy_of(replica: Replica, asset: Asset, state) -> Copy:
    return Copy(
        replica.provider_id, state.kind, state.zone, replica.status == Replica.Status.VERIFIED,
        replica.sha256 == asset.sha256, state.restore_hours.get(replica.storage_class, 0),
        available=state.status not in ("down", "disabled"),
    )


def asset_gaps(wedding: Wedding) -> dict[int, str]:
    """Asset id -> what it lacks, for every asset of the wedding below policy (one query for replicas)."""
    rules = rules_for(wedding)
    states = {s.id: s for s in provider_states()}
    gaps = {}
    assets = wedding.assets.filter(missing_since__isnull=True).prefetch_related("replicas")
    for asset in assets:
        copies = [copy_of(r, asset, states[r.provider_id]) for r in asset.replicas.all()]
        gap = protection_gap(copies, rules, wedding.residency_zone)
        if gap:
            gaps[asset.pk] = gap
    return gaps


def backup_finish(job_id: int, round_no: int) -> str:
    """RQ entry: after a round, either finish (manifests, status) or plan the next round for what is short."""
    job = BackupJob.objects.select_related("wedding").get(pk=job_id)
    if job.status == BackupJob.Status.CANCELLED:
        return job.status
    gaps = asset_gaps(job.wedding)
    if gaps and round_no < MAX_ROUNDS:
        _enqueue(job.queue, "backups.tasks.backup_round", job.pk, round_no + 1)
        return "next round"
    from .manifest import manifests_write
    from .repair import repair_prune_temporaries  # imported late: repair imports this module
    from .sharing import wedding_share
    from .snapshots import wedding_refresh

    if not gaps:
        repair_prune_temporaries(wedding=job.wedding)
    manifest_errors = manifests_write(wedding=job.wedding)
    wedding_share(wedding=job.wedding)  # a Dropbox folder link, when the couple allowed sharing; never raises
    total = job.wedding.assets.filter(missing_since__isnull=True).count()
    paths = dict(Asset.objects.filter(pk__in=gaps).values_list("pk", "relative_path"))
    errors = dict(
        Replica.objects.filter(asset__wedding=job.wedding, status=Replica.Status.FAILED)
        .values_list("asset__relative_path", "last_error")
    )
    status = BackupJob.Status.SUCCEEDED
    if gaps:
        status = BackupJob.Status.PARTIAL if len(gaps) < total else BackupJob.Status.FAILED
    summary = "; ".join(f"{paths[a]}: {gap}" + (f" ({errors[paths[a]]})" if paths[a] in errors else "")
                        for a, gap in list(gaps.items())[:20])
    if manifest_errors:
        summary = "; ".join([summary, *manifest_errors]).strip("; ")
    wedding_refresh(job.wedding)  # before the job shows as finished, so the console agrees with it
    BackupJob.objects.filter(pk=job.pk).update(
        status=status, finished_at=timezone.now(), files_done=total - len(gaps), files_failed=len(gaps),
        files_planned=total, error_summary=summary[:4000],
        result={"protected": total - len(gaps), "below_policy": len(gaps), "rounds": round_no,
                "manifest_errors": manifest_errors},
    )
    return status

