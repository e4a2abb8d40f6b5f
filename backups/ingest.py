"""Ingest: catalogue a wedding folder into Asset rows (size, sha256, kind, EXIF), with a per-file report. Only new
and changed files are read: a file whose size and mtime match the catalogue costs a stat, not a read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from .models import Asset, BackupJob, Plan, Wedding
from .roots import import_root_problem
from .scanning import (  # noqa: F401 (detect_kind, hash_file, image_metadata: this module's public names before)
    Problem,
    ScannedFile,
    Unread,
    detect_kind,
    hash_file,
    image_metadata,
    scan_file,
    scan_folder,
)
from .snapshots import wedding_refresh
from .thumbnails import thumbnail_make

OnFile = Callable[[str], None]
# The fields a rescan compares; the rest of a catalogued asset is never loaded (bounded memory on big weddings).
_CATALOGUE_FIELDS = ("pk", "relative_path", "kind", "size", "sha256", "source_mtime_ns", "missing_since")


@dataclass
class ImportReport:
    wedding: Wedding
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # written too recently: left for the next scan

    @property
    def taken(self) -> int:
        """Files whose new bytes were catalogued: what a backup now has to copy."""
        return len(self.added) + len(self.changed)

    def as_dict(self) -> dict:
        return {
            "wedding": {"id": self.wedding.pk, "slug": self.wedding.slug},
            "added": self.added, "changed": self.changed, "unchanged": len(self.unchanged),
            "removed": self.removed, "pending": self.pending,
            "problems": [{"path": p.relative_path, "reason": p.reason} for p in self.problems],
        }


def wedding_import(
    *,
    path: Path,
    couple: str,
    date: dt.date,
    country: str,
    city: str = "",
    plan: str = Plan.STANDARD,
    requires_ml_analysis: bool = False,
    on_file: OnFile | None = None,
    quiet_seconds: float = 0.0,
) -> ImportReport:
    """Create or update a wedding from a folder. Idempotent: a second run changes nothing. ``on_file`` is
    called with each entry's relative path as it is examined; ``quiet_seconds`` as for ``wedding_rescan``."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder")
    wedding, _ = Wedding.objects.get_or_create(
        couple=couple, date=date,
        defaults={"country": country, "city": city, "plan": plan, "requires_ml_analysis": requires_ml_analysis},
    )
    wedding.source_path = str(path.resolve())
    wedding.save(update_fields=["source_path", "updated"])
    return wedding_rescan(wedding=wedding, on_file=on_file, quiet_seconds=quiet_seconds)


def wedding_rescan(*, wedding: Wedding, on_file: OnFile | None = None, quiet_seconds: float = 0.0) -> ImportReport:
    """Re-catalogue a wedding's source folder: new and changed files recorded, removed ones reported. A file whose
    size and mtime match the catalogue is not read; one modified less than ``quiet_seconds`` ago is ``pending``."""
    root = Path(wedding.source_path)
    report = ImportReport(wedding)
    existing = _catalogue(wedding)
    known = {rel: (a.size, a.source_mtime_ns) for rel, a in existing.items()
             if a.source_mtime_ns is not None and a.missing_since is None}
    seen: set[str] = set()
    for item in scan_folder(root, known=known, quiet_seconds=quiet_seconds):
        if on_file is not None:
            on_file(item.relative_path)
        seen.add(item.relative_path)  # unreadable now is not gone: only a file not found is marked missing
        _take(wedding, existing.get(item.relative_path), item, report)
    _mark_missing(report, [(rel, a) for rel, a in existing.items() if rel not in seen])
    wedding_refresh(wedding)  # new or changed files are at risk until backed up
    return report


def wedding_ingest_paths(*, wedding: Wedding, relative_paths: Iterable[str],
                         on_file: OnFile | None = None) -> ImportReport:
    """Catalogue only these files of the wedding's folder (the ones a watcher saw change and settle): new and
    changed ones recorded, gone ones marked missing, unchanged ones not read. Directories are skipped."""
    root = Path(wedding.source_path).resolve()
    report = ImportReport(wedding)
    wanted = sorted(set(relative_paths))
    existing = _catalogue(wedding, wanted)
    known = {rel: (a.size, a.source_mtime_ns) for rel, a in existing.items()
             if a.source_mtime_ns is not None and a.missing_since is None}
    gone = []
    for rel in wanted:
        if on_file is not None:
            on_file(rel)
        path = root / rel
        if not path.is_relative_to(root) or ".." in Path(rel).parts:
            continue
        if not path.exists() and not path.is_symlink():
            gone.append((rel, existing.get(rel)))
            continue
        if path.is_dir() and not path.is_symlink():
            continue
        item = scan_file(path, root, known=known)
        _take(wedding, existing.get(item.relative_path), item, report)
    _mark_missing(report, [(rel, a) for rel, a in gone if a is not None])
    if report.taken or report.removed:
        wedding_refresh(wedding)
    return report


def _catalogue(wedding: Wedding, relative_paths: list[str] | None = None) -> dict[str, Asset]:
    assets = Asset.objects.filter(wedding=wedding).only(*_CATALOGUE_FIELDS)
    if relative_paths is not None:
        assets = assets.filter(relative_path__in=relative_paths)
    return {a.relative_path: a for a in assets.iterator(chunk_size=2000)}


def _take(wedding: Wedding, asset: Asset | None, item: ScannedFile | Problem | Unread, report: ImportReport) -> None:
    """Record one scanned entry: new bytes are "seen complete" now and not protected until backed up again."""
    if isinstance(item, ScannedFile):  # one photo at a time, decoded shrunk: a 5,000-photo import stays small
        thumbnail_make(path=item.path, sha256=item.sha256, kind=item.kind)
    if isinstance(item, Problem):
        report.problems.append(item)
    elif isinstance(item, Unread):
        (report.pending if item.pending else report.unchanged).append(item.relative_path)
        if asset is not None and not item.pending:  # photos catalogued before thumbnails existed get one now
            thumbnail_make(path=Path(wedding.source_path) / item.relative_path, sha256=asset.sha256, kind=asset.kind)
    elif asset is None:
        Asset.objects.create(wedding=wedding, **_asset_fields(item), seen_complete_at=timezone.now())
        report.added.append(item.relative_path)
    elif asset.sha256 != item.sha256 or asset.size != item.size:
        Asset.objects.filter(pk=asset.pk).update(**_asset_fields(item), missing_since=None, protected_at=None,
                                                 seen_complete_at=timezone.now(), updated=timezone.now())
        report.changed.append(item.relative_path)
    elif asset.missing_since is not None:  # back in the folder with the same bytes: its copies still count
        Asset.objects.filter(pk=asset.pk).update(**_asset_fields(item), missing_since=None, updated=timezone.now())
        report.changed.append(item.relative_path)
    else:  # same bytes under a new mtime (touched, copied back): remember the mtime, so it is not read again
        Asset.objects.filter(pk=asset.pk).update(source_mtime_ns=item.mtime_ns, source_location=str(item.path))
        report.unchanged.append(item.relative_path)


def _mark_missing(report: ImportReport, assets: list[tuple[str, Asset]]) -> None:
    with transaction.atomic():
        for rel, asset in assets:
            if asset.missing_since is None:
                # Never deleted from providers: the backup may be the only copy left.
                Asset.objects.filter(pk=asset.pk).update(missing_since=timezone.now(), updated=timezone.now())
                report.removed.append(rel)


def _asset_fields(item: ScannedFile) -> dict:
    return {
        "relative_path": item.relative_path, "kind": item.kind, "size": item.size, "sha256": item.sha256,
        "content_type": item.content_type, "width": item.width, "height": item.height,
        "captured_at": item.captured_at, "source_location": str(item.path), "source_mtime_ns": item.mtime_ns,
    }


def import_run(*, job: BackupJob) -> None:
    """Run the import a console form asked for and record its report on the job."""
    BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.RUNNING, started_at=timezone.now())
    p = job.params
    outside = import_root_problem(p["path"])
    if outside:
        BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.FAILED, finished_at=timezone.now(),
                                                   error_summary=outside)
        return
    try:
        report = wedding_import(path=Path(p["path"]), couple=p["couple"], date=dt.date.fromisoformat(p["date"]),
                                country=p["country"], city=p.get("city", ""), plan=p.get("plan", Plan.STANDARD),
                                requires_ml_analysis=bool(p.get("requires_ml_analysis")))
    except (FileNotFoundError, ValueError) as exc:
        BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.FAILED, finished_at=timezone.now(),
                                                   error_summary=str(exc))
        return
    except Exception as exc:  # never left "running" forever: the job says what broke, RQ keeps the traceback
        BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.FAILED, finished_at=timezone.now(),
                                                   error_summary=f"{type(exc).__name__}: {exc}"[:4000])
        raise
    files = len(report.added) + len(report.changed) + len(report.unchanged)
    BackupJob.objects.filter(pk=job.pk).update(
        wedding=report.wedding, status=BackupJob.Status.PARTIAL if report.problems else BackupJob.Status.SUCCEEDED,
        finished_at=timezone.now(), files_planned=files + len(report.problems), files_done=files,
        files_failed=len(report.problems), result=report.as_dict(),
        error_summary="; ".join(f"{x.relative_path}: {x.reason}" for x in report.problems)[:4000],
    )
