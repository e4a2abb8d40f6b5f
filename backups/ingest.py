"""Ingest: catalogue a wedding folder into Asset rows (size, sha256, kind, EXIF), with a per-file report."""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from .models import Asset, AssetKind, BackupJob, Plan, Wedding
from .roots import import_root_problem
from .snapshots import wedding_refresh

READ_CHUNK = 1024 * 1024
MAX_RELATIVE_PATH = 1024
# A file whose size or hash moves while we read it is read again this many times, then reported.
READ_ATTEMPTS = 3

PHOTO_EXT = {".jpg", ".jpeg", ".heic", ".heif", ".png"}
RAW_EXT = {".cr2", ".cr3", ".nef", ".arw", ".dng", ".raf", ".orf"}
VIDEO_EXT = {".mp4", ".mov", ".mts", ".m2ts"}
DOCUMENT_EXT = {".pdf", ".docx", ".txt"}

# Magic numbers win over extensions: a JPEG named .txt is still a photo.
_MAGIC: list[tuple[bytes, int, str, str]] = [
    (b"\xff\xd8\xff", 0, AssetKind.PHOTO, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, AssetKind.PHOTO, "image/png"),
    (b"%PDF-", 0, AssetKind.DOCUMENT, "application/pdf"),
    (b"ftypheic", 4, AssetKind.PHOTO, "image/heic"),
    (b"ftypheix", 4, AssetKind.PHOTO, "image/heic"),
    (b"ftypmif1", 4, AssetKind.PHOTO, "image/heif"),
    (b"ftypcrx ", 4, AssetKind.RAW_PHOTO, "image/x-canon-cr3"),
    (b"ftypqt  ", 4, AssetKind.VIDEO, "video/quicktime"),
    (b"ftyp", 4, AssetKind.VIDEO, "video/mp4"),
]
_CONTENT_TYPES = {
    ".cr2": "image/x-canon-cr2", ".cr3": "image/x-canon-cr3", ".nef": "image/x-nikon-nef",
    ".arw": "image/x-sony-arw", ".dng": "image/x-adobe-dng", ".raf": "image/x-fuji-raf",
    ".orf": "image/x-olympus-orf", ".mts": "video/mp2t", ".m2ts": "video/mp2t", ".heic": "image/heic",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def detect_kind(name: str, head: bytes) -> tuple[str, str]:
    """(kind, content type) from the first bytes and the extension."""
    ext = os.path.splitext(name)[1].lower()
    if ext in RAW_EXT:  # most raw formats are TIFF inside; the extension is the better signal
        return AssetKind.RAW_PHOTO, _CONTENT_TYPES.get(ext, "application/octet-stream")
    for magic, offset, kind, ctype in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind, ctype
    ctype = _CONTENT_TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ext in PHOTO_EXT:
        return AssetKind.PHOTO, ctype
    if ext in VIDEO_EXT:
        return AssetKind.VIDEO, ctype
    if ext in DOCUMENT_EXT:
        return AssetKind.DOCUMENT, ctype
    return AssetKind.OTHER, ctype


def image_metadata(path: Path) -> tuple[int | None, int | None, dt.datetime | None]:
    """Width, height and capture time (EXIF DateTimeOriginal) via Pillow, where it can read the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
            exif = img.getexif()
            raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, else DateTime
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None, None, None
    captured = None
    if isinstance(raw, str):
        try:
            captured = dt.datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=dt.UTC)
        except ValueError:
            captured = None
    return width, height, captured


@dataclass
class ScannedFile:
    path: Path
    relative_path: str
    size: int
    sha256: str
    kind: str
    content_type: str
    width: int | None = None
    height: int | None = None
    captured_at: dt.datetime | None = None


@dataclass
class Problem:
    relative_path: str
    reason: str


def hash_file(path: Path) -> tuple[int, str, bytes]:
    """(size, sha256, first bytes), reading in chunks; retried when the file changes under us."""
    for _ in range(READ_ATTEMPTS):
        before = path.stat()
        digest, size, head = hashlib.sha256(), 0, b""
        with open(path, "rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                if not head:
                    head = chunk[:64]
                digest.update(chunk)
                size += len(chunk)
        after = path.stat()
        if size == after.st_size and (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):
            return size, digest.hexdigest(), head
    raise OSError("the file kept changing while it was read; try again when it is complete")


def scan_folder(root: Path) -> Iterator[ScannedFile | Problem]:
    """Walk ``root`` (never following links), yielding one result per entry, sorted for stable reports. A folder
    that cannot be read is a problem reported like a file's, never silently skipped."""
    root = root.resolve()
    unreadable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=unreadable.append):
        yield from _folder_problems(unreadable, root)
        dirnames.sort()
        here = Path(dirpath)
        for name in list(dirnames):
            if (here / name).is_symlink():
                dirnames.remove(name)
                yield Problem(_relative(here / name, root), "symbolic link to a folder: not followed")
        for name in sorted(filenames):
            yield _scan_one(here / name, root)
    yield from _folder_problems(unreadable, root)


def _folder_problems(errors: list[OSError], root: Path) -> Iterator[Problem]:
    while errors:
        exc = errors.pop(0)
        where = _relative(Path(exc.filename), root) if exc.filename else "."
        yield Problem(where or ".", f"folder cannot be read ({exc.strerror or type(exc).__name__}): its files are "
                                    "not backed up")


def _relative(path: Path, root: Path) -> str:
    """The path inside the wedding, printable: a name that is not valid UTF-8 shows its bytes escaped."""
    rel = path.relative_to(root).as_posix()
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace")
    return rel


def _scan_one(path: Path, root: Path) -> ScannedFile | Problem:
    rel = _relative(path, root)
    try:
        path.relative_to(root).as_posix().encode("utf-8")
    except UnicodeEncodeError:
        return Problem(rel, "file name is not valid UTF-8")
    if "\\" in rel or any(ord(c) < 32 for c in rel):
        return Problem(rel, "file name contains a backslash or control character")
    if len(rel.encode()) > MAX_RELATIVE_PATH:
        return Problem(rel[:80] + "…", f"path longer than {MAX_RELATIVE_PATH} bytes")
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            return Problem(rel, "symbolic link: not followed (copy the file itself into the folder)")
        if not stat.S_ISREG(st.st_mode):
            return Problem(rel, "not a regular file")
        size, sha256, head = hash_file(path)
    except PermissionError:
        return Problem(rel, "permission denied: the file cannot be read")
    except OSError as exc:
        return Problem(rel, exc.strerror or str(exc))
    kind, ctype = detect_kind(path.name, head)
    width = height = captured = None
    if kind == AssetKind.PHOTO:
        width, height, captured = image_metadata(path)
    return ScannedFile(path, rel, size, sha256, kind, ctype, width, height, captured)


@dataclass
class ImportReport:
    wedding: Wedding
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "wedding": {"id": self.wedding.pk, "slug": self.wedding.slug},
            "added": self.added, "changed": self.changed, "unchanged": len(self.unchanged),
            "removed": self.removed,
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
) -> ImportReport:
    """Create or update a wedding from a folder. Idempotent: a second run changes nothing."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder")
    wedding, _ = Wedding.objects.get_or_create(
        couple=couple, date=date,
        defaults={"country": country, "city": city, "plan": plan, "requires_ml_analysis": requires_ml_analysis},
    )
    wedding.source_path = str(path.resolve())
    wedding.save(update_fields=["source_path", "updated"])
    return wedding_rescan(wedding=wedding)


def wedding_rescan(*, wedding: Wedding) -> ImportReport:
    """Re-catalogue a wedding's source folder: new and changed files recorded, removed ones reported."""
    root = Path(wedding.source_path)
    report = ImportReport(wedding)
    existing = {a.relative_path: a for a in wedding.assets.all()}
    seen: set[str] = set()
    for item in scan_folder(root):
        if isinstance(item, Problem):
            report.problems.append(item)
            continue
        seen.add(item.relative_path)
        asset = existing.get(item.relative_path)
        if asset is None:
            Asset.objects.create(wedding=wedding, **_asset_fields(item))
            report.added.append(item.relative_path)
        elif asset.sha256 != item.sha256 or asset.size != item.size or asset.missing_since:
            for name, value in _asset_fields(item).items():
                setattr(asset, name, value)
            asset.missing_since = None
            asset.save()
            report.changed.append(item.relative_path)
        else:
            report.unchanged.append(item.relative_path)
    with transaction.atomic():
        for rel, asset in existing.items():
            if rel not in seen and asset.missing_since is None:
                # Never deleted from providers: the backup may be the only copy left.
                asset.missing_since = timezone.now()
                asset.save(update_fields=["missing_since", "updated"])
                report.removed.append(rel)
    wedding_refresh(wedding)  # new or changed files are at risk until backed up
    return report


def _asset_fields(item: ScannedFile) -> dict:
    return {
        "relative_path": item.relative_path, "kind": item.kind, "size": item.size, "sha256": item.sha256,
        "content_type": item.content_type, "width": item.width, "height": item.height,
        "captured_at": item.captured_at, "source_location": str(item.path),
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
