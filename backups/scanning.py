"""Scanning a wedding folder: what each file is (kind, size, sha256, EXIF) without touching the catalogue. A rescan
passes what the catalogue knows, so that a file whose size and mtime are unchanged is not read again, and a quiet
period, so that a file still being written is left for next time."""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import os
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .models import AssetKind

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
    mtime_ns: int | None = None


@dataclass
class Unread:
    """A file seen but not read: unchanged since it was catalogued, or ``pending`` (written too recently)."""

    relative_path: str
    pending: bool = False


@dataclass
class Problem:
    relative_path: str
    reason: str
    retry: bool = False  # the file was changing while read: worth another try once it has settled


class FileChanging(OSError):
    """The file's size or mtime moved on every attempt to read it."""


def hash_file(path: Path) -> tuple[int, str, bytes]:
    """(size, sha256, first bytes), reading in chunks; retried when the file changes under us."""
    size, sha256, head, _ = hash_file_stat(path)
    return size, sha256, head


def hash_file_stat(path: Path) -> tuple[int, str, bytes, int]:
    """``hash_file`` plus the mtime (ns) the bytes were read under: the pair a later rescan compares."""
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
            return size, digest.hexdigest(), head, after.st_mtime_ns
    raise FileChanging("the file kept changing while it was read; try again when it is complete")


Known = Mapping[str, tuple[int, int]]


def scan_folder(root: Path, *, known: Known | None = None,
                quiet_seconds: float = 0.0) -> Iterator[ScannedFile | Problem | Unread]:
    """Walk ``root`` (never following links), yielding one result per entry, sorted for stable reports. A folder
    that cannot be read is a problem reported like a file's, never silently skipped. ``known``: relative path ->
    (size, mtime_ns) catalogued; such a file is ``Unread``, as is one modified less than ``quiet_seconds`` ago."""
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
            yield scan_file(here / name, root, known=known, quiet_seconds=quiet_seconds)
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


def scan_file(path: Path, root: Path, *, known: Known | None = None,
              quiet_seconds: float = 0.0) -> ScannedFile | Problem | Unread:
    """One entry of ``root`` (resolved), as ``scan_folder`` sees it."""
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
        if known is not None and known.get(rel) == (st.st_size, st.st_mtime_ns):
            return Unread(rel)
        # A future mtime (the clock went back) is not "recent": waiting for it could take hours. The ctime counts
        # too: a file just written with an old mtime kept (a card copied with its camera's times) changed now.
        if 0 <= time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < quiet_seconds * 1e9:
            return Unread(rel, pending=True)
        size, sha256, head, mtime_ns = hash_file_stat(path)
    except PermissionError:
        return Problem(rel, "permission denied: the file cannot be read")
    except FileChanging as exc:
        return Problem(rel, str(exc), retry=True)
    except OSError as exc:
        return Problem(rel, exc.strerror or str(exc))
    kind, ctype = detect_kind(path.name, head)
    width = height = captured = None
    if kind == AssetKind.PHOTO:
        width, height, captured = image_metadata(path)
    return ScannedFile(path, rel, size, sha256, kind, ctype, width, height, captured, mtime_ns)
