"""Restore a wedding from its best healthy replicas: sha256 checked, atomic writes, fall back on any error."""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import F, Sum
from django.utils import timezone

from providers.backends import backend_for
from providers.backends.base import Backend, NeedsRestore, ObjectNotFound, ProviderError
from providers.breaker import breaker_record
from providers.models import Provider

from . import encryption
from .audit import audit_record
from .models import Asset, BackupJob, Replica, Wedding
from .placement import provider_states
from .roots import restore_root_problem
from .signals import wedding_read

log = logging.getLogger(__name__)


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # path -> every attempt's error
    rehydrating: list[str] = field(default_factory=list)
    fallbacks: int = 0
    bytes: int = 0

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def replicas_best_first(replicas: list[Replica], hours: dict[tuple[int, str], float]) -> list[Replica]:
    """Best first: instantly readable, healthy, then the provider's name for a stable order."""
    def score(r: Replica) -> tuple:
        return (hours.get((r.provider_id, r.storage_class), 0) > 0,
                r.provider.status != Provider.Status.ACTIVE, r.provider.name)

    return sorted(replicas, key=score)


def _safe_target(root: Path, relative_path: str) -> Path:
    target = (root / relative_path).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"{relative_path!r} would be written outside {root}")
    return target


def _open(backend: Backend, replica: Replica):
    """The version we verified when the provider keeps versions (what was written or deleted over it since, by
    mistake or by ransomware, does not matter); else, or when that version is gone, the object as it is now. The
    bytes are sha256-checked either way."""
    if backend.reads_versions and replica.version_id:
        try:
            return backend.open_version(replica.object_key, replica.version_id)
        except ProviderError as exc:
            log.info("version %s of %s unreadable (%s); reading the latest", replica.version_id,
                     replica.object_key, exc)
    return backend.open(replica.object_key)


def asset_restore_to(asset: Asset, target: Path, candidates: list[Replica], backends: dict[int, Backend],
                     report: RestoreReport, *, include_archived: bool) -> bool:
    """Try each candidate until one yields bytes whose sha256 matches; write them atomically."""
    errors = []
    for n, replica in enumerate(candidates):
        backend = backends.setdefault(replica.provider_id, backend_for(replica.provider))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".restore-")
        try:
            digest = hashlib.sha256()
            key = encryption.wedding_data_key(asset.wedding) if replica.encrypted else None
            with os.fdopen(fd, "wb") as out, _open(backend, replica) as src:
                for chunk in encryption.plaintext_chunks(src, encrypted=replica.encrypted, data_key=key):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != asset.sha256:
                raise ProviderError("sha256 of the restored bytes differs from the catalogue")
            os.replace(tmp, target)
            breaker_record(replica.provider_id, True)
            report.restored.append(asset.relative_path)
            report.bytes += asset.size
            report.fallbacks += n > 0
            return True
        except NeedsRestore as exc:
            errors.append(f"{replica.provider.name}: {exc}")
            if include_archived:
                backend.request_restore(replica.object_key)
                report.rehydrating.append(f"{replica.provider.name}: {asset.relative_path}")
        except (ProviderError, OSError) as exc:
            errors.append(f"{replica.provider.name}: {exc}")
            if isinstance(exc, ProviderError) and not isinstance(exc, ObjectNotFound):
                breaker_record(replica.provider_id, False, str(exc), source="restore")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    report.failed[asset.relative_path] = "; ".join(errors) or "no verified replica"
    return False


def wedding_restore(*, wedding: Wedding, to: Path, only: str | None = None, include_archived: bool = False,
                    progress: Callable[[Asset, bool], None] | None = None) -> RestoreReport:
    """Restore every asset (or those matching the ``only`` glob) under ``to``; ``progress`` hears of each file."""
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    hours = {(s.id, cls): h for s in provider_states() for cls, h in s.restore_hours.items()}
    report = RestoreReport()
    backends: dict[int, Backend] = {}
    assets = wedding.assets.prefetch_related("replicas__provider").order_by("relative_path")
    for asset in assets:
        if only and not fnmatch.fnmatch(asset.relative_path, only):
            continue
        candidates = [
            r for r in asset.replicas.all()
            if r.status == Replica.Status.VERIFIED and r.sha256 == asset.sha256
            and r.provider.enabled and r.provider.status != Provider.Status.DOWN
        ]
        try:
            target = _safe_target(to, asset.relative_path)
        except ValueError as exc:  # one bad path in the catalogue skips that file, never the whole restore
            report.failed[asset.relative_path] = str(exc)
            ok = False
        else:
            try:
                ok = asset_restore_to(asset, target, replicas_best_first(candidates, hours), backends, report,
                                      include_archived=include_archived)
            except OSError as exc:  # e.g. a file where the catalogue needs a folder: that file, not the restore
                report.failed[asset.relative_path] = f"cannot write it here: {exc.strerror or exc}"
                ok = False
        if progress is not None:
            progress(asset, bool(ok))
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

    def progress(asset: Asset, ok: bool) -> None:
        BackupJob.objects.filter(pk=job.pk).update(
            files_done=F("files_done") + int(ok), files_failed=F("files_failed") + int(not ok),
            bytes_done=F("bytes_done") + (asset.size if ok else 0),
            bytes_failed=F("bytes_failed") + (0 if ok else asset.size))

    report = wedding_restore(wedding=job.wedding, to=Path(job.params["to"]), only=only, progress=progress)
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
