"""Restore a wedding from its best healthy replicas: sha256 checked, atomic writes, fall back on any error."""

from __future__ import annotations

import fnmatch
import logging
import shutil
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import F, Sum
from django.utils import timezone

from providers.backends import backend_for
from providers.backends.base import Backend
from providers.breaker import breaker_record
from providers.models import Provider

from . import encryption
from .audit import audit_record
from .limits import ProviderSlots
from .models import Asset, BackupJob, Replica, Wedding
from .placement import provider_states
from .restore_copy import FileOutcome, file_restore, replica_open, replicas_best_first
from .roots import restore_root_problem
from .signals import wedding_read

log = logging.getLogger(__name__)
RESTORE_THREADS = 8  # files read at once (each within its provider's slots); rclone's --transfers 8
PROGRESS_EVERY = 0.5  # seconds between a restore job's counter updates


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # path -> every attempt's error
    rehydrating: list[str] = field(default_factory=list)
    fallbacks: int = 0
    bytes: int = 0

    def as_dict(self) -> dict:
        return self.__dict__.copy()

    def add(self, asset: Asset, outcome: FileOutcome | str) -> bool:
        """Count one file's outcome (a string: why it could not even be tried)."""
        if isinstance(outcome, str):
            self.failed[asset.relative_path] = outcome
            return False
        self.rehydrating += outcome.rehydrating
        if not outcome.ok:
            self.failed[asset.relative_path] = "; ".join(outcome.errors) or "no verified replica"
            return False
        self.restored.append(asset.relative_path)
        self.bytes += asset.size
        self.fallbacks += outcome.fallbacks > 0
        return True


_open = replica_open  # the name backups.fetch reads replicas by


def _safe_target(root: Path, relative_path: str) -> Path:
    target = (root / relative_path).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"{relative_path!r} would be written outside {root}")
    return target


def _record_failures(outcome: FileOutcome) -> None:
    for provider_id, error in outcome.failures:
        breaker_record(provider_id, False, error, source="restore")


def asset_restore_to(asset: Asset, target: Path, candidates: list[Replica], backends: dict[int, Backend],
                     report: RestoreReport, *, include_archived: bool) -> bool:
    """Try each candidate until one yields bytes whose sha256 matches; write them atomically (one file, in the
    caller's thread: copy sources and drills; a wedding's restore runs ``file_restore`` in its pool)."""
    outcome = file_restore(asset, target, candidates, backends, include_archived=include_archived,
                           data_key=lambda: encryption.wedding_data_key(asset.wedding))
    _record_failures(outcome)
    if outcome.ok:
        breaker_record(outcome.provider_id, True)
    return report.add(asset, outcome)


def _good_copies(asset: Asset) -> list[Replica]:
    return [r for r in asset.replicas.all()
            if r.status == Replica.Status.VERIFIED and r.sha256 == asset.sha256
            and r.provider.enabled and r.provider.status != Provider.Status.DOWN]


def wedding_restore(*, wedding: Wedding, to: Path, only: str | None = None, include_archived: bool = False,
                    progress: Callable[[Asset, bool], None] | None = None) -> RestoreReport:
    """Restore every asset (or those matching the ``only`` glob) under ``to``, ``RESTORE_THREADS`` files at a time
    (largest first), each from its best replica within the provider's slots; a provider that fails is tried last
    for the files after. ``progress`` hears of each file as it ends, in this thread. The report lists files in
    path order; breaker successes are recorded once per provider at the end, failures as they come."""
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    hours = {(s.id, cls): h for s in provider_states() for cls, h in s.restore_hours.items()}
    assets = [a for a in wedding.assets.prefetch_related("replicas__provider").order_by("relative_path")
              if not only or fnmatch.fnmatch(a.relative_path, only)]
    outcomes: dict[int, FileOutcome | str] = {}
    work: list[tuple[int, Asset, Path, list[Replica]]] = []
    for i, asset in enumerate(assets):
        try:
            work.append((i, asset, _safe_target(to, asset.relative_path),
                         replicas_best_first(_good_copies(asset), hours)))
        except ValueError as exc:  # one bad path in the catalogue skips that file, never the whole restore
            outcomes[i] = str(exc)
    # A file where the catalogue needs a folder (``x`` and ``x/y.jpg``): the first in path order wins, whichever
    # thread would come first.
    files = {target for _, _, target, _ in work}
    for item in list(work):
        clash = next((p for p in item[2].parents if p in files), None)
        if clash is not None:
            work.remove(item)
            outcomes[item[0]] = f"cannot write it here: {clash.name} is a file of this restore"
    backends: dict[int, Backend] = {}
    for *_, candidates in work:
        for r in candidates:
            if r.provider_id not in backends:
                backends[r.provider_id] = backend_for(r.provider)
    encrypted = any(r.encrypted for *_, candidates in work for r in candidates)
    data_key = encryption.wedding_data_key(wedding) if encrypted else None
    slots, avoid = ProviderSlots(), set()

    def one(asset: Asset, target: Path, candidates: list[Replica]) -> FileOutcome | str:
        try:
            return file_restore(asset, target, candidates, backends, include_archived=include_archived,
                                data_key=lambda: data_key, slot=slots.hold, avoid=avoid)
        except OSError as exc:  # e.g. a file where the catalogue needs a folder: that file, not the restore
            return f"cannot write it here: {exc.strerror or exc}"

    if progress is not None:
        for i in outcomes:
            progress(assets[i], False)
    served: Counter[int] = Counter()
    pool = ThreadPoolExecutor(max_workers=RESTORE_THREADS, thread_name_prefix="restore")
    try:
        futures = {pool.submit(one, asset, target, candidates): (i, asset)
                   for i, asset, target, candidates in sorted(work, key=lambda w: -w[1].size)}
        for future in as_completed(futures):
            i, asset = futures[future]
            outcome = outcomes[i] = future.result()
            if isinstance(outcome, FileOutcome):
                _record_failures(outcome)
                served[outcome.provider_id] += outcome.ok
            if progress is not None:
                progress(asset, isinstance(outcome, FileOutcome) and outcome.ok)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        slots.close()
    for provider_id, n in served.items():
        if n:
            breaker_record(provider_id, True, count=n)
    report = RestoreReport()
    for i, asset in enumerate(assets):
        report.add(asset, outcomes[i])
    _record_access(wedding, report)
    return report


def restore_planned(*, wedding: Wedding, only: str | None = None) -> tuple[int, int]:
    """How many files and bytes a restore of the wedding (or of the ``only`` glob) will write."""
    planned = [a for a in wedding.assets.only("relative_path", "size")
               if not only or fnmatch.fnmatch(a.relative_path, only)]
    return len(planned), sum(a.size for a in planned)


def restore_target_problem(path: str) -> str:
    """Why a folder cannot take a restore from the console, or ''. Never into existing files: nothing a
    restore writes may replace something already there."""
    target = Path(path)
    if not target.is_absolute():
        return "give an absolute path on the server"
    outside = restore_root_problem(target)
    if outside:
        return outside
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        return f"{target} exists and is not an empty folder"
    return ""


def restore_run(*, job: BackupJob) -> str:
    """Restore into the job's folder, with the job's counters moving file by file; the folder is checked
    again here (it may have filled since the job was queued)."""
    problem = restore_target_problem(job.params["to"])
    if problem:
        BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.FAILED, finished_at=timezone.now(),
                                                   error_summary=problem)
        return BackupJob.Status.FAILED
    only = job.params.get("only") or None
    files, size = restore_planned(wedding=job.wedding, only=only)
    BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.RUNNING, started_at=timezone.now(),
                                               files_planned=files, bytes_planned=size)

    counts = Counter()
    flushed = [time.monotonic()]

    def flush() -> None:  # one UPDATE per PROGRESS_EVERY seconds, not one per file
        if counts:
            BackupJob.objects.filter(pk=job.pk).update(**{name: F(name) + n for name, n in counts.items()})
            counts.clear()
        flushed[0] = time.monotonic()

    def progress(asset: Asset, ok: bool) -> None:
        counts.update({"files_done": int(ok), "files_failed": int(not ok),
                       "bytes_done": asset.size if ok else 0, "bytes_failed": 0 if ok else asset.size})
        if time.monotonic() - flushed[0] >= PROGRESS_EVERY:
            flush()

    try:
        report = wedding_restore(wedding=job.wedding, to=Path(job.params["to"]), only=only, progress=progress)
    finally:
        flush()
    status = BackupJob.Status.SUCCEEDED
    if report.failed or report.rehydrating:
        status = BackupJob.Status.PARTIAL if report.restored else BackupJob.Status.FAILED
    BackupJob.objects.filter(pk=job.pk).update(
        status=status, finished_at=timezone.now(), result=report.as_dict(),
        error_summary="; ".join(f"{path}: {why}" for path, why in list(report.failed.items())[:20])[:4000])
    return status


def wedding_zip(wedding: Wedding, *, into: Path) -> tuple[Path, RestoreReport]:
    """Restore into a work folder under ``into`` and pack it as ``<slug>.zip`` there; the files go after."""
    work = Path(tempfile.mkdtemp(prefix=f"restore-{wedding.slug}-", dir=into))
    report = wedding_restore(wedding=wedding, to=work)
    archive = into / f"{wedding.slug}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for rel in report.restored:
            zf.write(work / rel, arcname=rel)
    shutil.rmtree(work, ignore_errors=True)
    return archive, report


def zip_too_big(wedding: Wedding) -> str:
    """Why the wedding is too large for a zip download ("" when it is not): restore it into a folder instead."""
    total = wedding.assets.filter(missing_since__isnull=True).aggregate(total=Sum("size"))["total"] or 0
    limit = settings.WEDBACKUP_ZIP_MAX_BYTES
    if total > limit:
        return (f"{wedding.slug} holds {total / 1e9:.1f} GB, over the {limit / 1e9:.1f} GB a zip download may hold: "
                "restore it into a server folder instead")
    return ""


def zip_run(*, job: BackupJob) -> str:
    """Build the job's zip in the zip folder; the job's result says where, and how many files failed."""
    wedding = job.wedding
    BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.RUNNING, started_at=timezone.now(),
                                               files_planned=wedding.assets.count())
    into = zip_folder(job.pk)
    into.mkdir(parents=True, exist_ok=True)
    archive, report = wedding_zip(wedding, into=into)
    status = BackupJob.Status.SUCCEEDED
    summary = ""
    if report.failed:
        status = BackupJob.Status.PARTIAL if report.restored else BackupJob.Status.FAILED
        summary = f"Restore failed for {len(report.failed)} of {len(report.failed) + len(report.restored)} files: "
        summary += "; ".join(f"{path}: {why}" for path, why in list(report.failed.items())[:20])
    if status == BackupJob.Status.FAILED:
        shutil.rmtree(into, ignore_errors=True)
    BackupJob.objects.filter(pk=job.pk).update(
        status=status, finished_at=timezone.now(), files_done=len(report.restored), files_failed=len(report.failed),
        bytes_done=report.bytes, error_summary=summary[:4000],
        result={"zip": str(archive) if status != BackupJob.Status.FAILED else "", "files": len(report.restored),
                "failed": len(report.failed)})
    return status


def zip_folder(job_id: int) -> Path:
    return Path(settings.WEDBACKUP_ZIP_DIR) / str(job_id)


def zip_download(*, job: BackupJob, by=None) -> Path | None:
    """The job's zip, if it is ready and still there; the download is audited (who fetched which wedding)."""
    path = Path(job.result.get("zip") or "") if job.params.get("zip") else None
    if path is None or not path.is_file() or not path.is_relative_to(zip_folder(job.pk)):
        return None
    audit_record(by=by, action="wedding.download", target=f"wedding:{job.wedding.slug}",
                 details={"job": job.pk, "files": job.result.get("files"), "bytes": path.stat().st_size})
    return path


def _record_access(wedding: Wedding, report: RestoreReport) -> None:
    if report.bytes:
        wedding_read.send(sender=Wedding, wedding=wedding, kind="restore", bytes=report.bytes)
