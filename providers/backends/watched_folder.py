"""A local or mounted folder that a backup agent (Carbonite, a NAS job) copies off site.

The folder keeps the plain layout and nothing else: content type, metadata and sha256 live in a hidden
``.wedbackup-meta/`` tree (mirror path + ".json") that ``list()`` ignores. Writes go to a temp file in
the target directory and are renamed into place only after the bytes were checked.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .base import (
    Backend,
    BackendConfig,
    HashingReader,
    IntegrityError,
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    Probe,
    TransientError,
    validate_key,
)

META_DIR = ".wedbackup-meta"
TMP_PREFIX = ".wedbackup-tmp-"
CHUNK = 1024 * 1024
DEFAULT_AGENT_MAX_AGE_HOURS = 24.0
# A mount that went away or hiccuped; everything else (permissions, disk full, bad names) needs a person.
TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name) for name in
    ("EIO", "ESTALE", "ETIMEDOUT", "EHOSTDOWN", "EHOSTUNREACH", "ENOTCONN", "EAGAIN", "EBUSY", "EINTR",
     "ECONNRESET", "ECONNABORTED", "ENETDOWN", "ENETUNREACH")
    if hasattr(errno, name)
)


class WatchedFolderBackend(Backend):
    kind = "watched_folder"
    storage_classes = ("",)
    known_options = frozenset({"create", "agent_marker", "agent_max_age_hours"})

    @classmethod
    def location_of(cls, config: BackendConfig) -> str:
        """The folder itself, symlinks resolved: two paths to one folder are one place."""
        return f"watched_folder|{Path(config.bucket).expanduser().absolute().resolve()}||"

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        if not config.bucket:
            raise PermanentError(f"{config.name}: no folder configured")
        self.root = Path(config.bucket).expanduser().absolute()
        max_age = config.options.get("agent_max_age_hours")
        if max_age is not None and not config.options.get("agent_marker"):
            raise PermanentError(f"{config.name}: agent_max_age_hours needs agent_marker")
        try:
            self.agent_max_age_hours = float(max_age if max_age is not None else DEFAULT_AGENT_MAX_AGE_HOURS)
        except (TypeError, ValueError):
            raise PermanentError(f"{config.name}: agent_max_age_hours must be a number, not {max_age!r}") from None
        if self.agent_max_age_hours <= 0:
            raise PermanentError(f"{config.name}: agent_max_age_hours must be positive")

    # -- paths ------------------------------------------------------------------------------------
    def _checked_root(self) -> Path:
        with self._os_errors(self.root):
            if not self.root.exists():
                if not self.config.options.get("create"):
                    raise PermanentError(f"{self.config.name}: folder {self.root} does not exist (is it mounted?)")
                self.root.mkdir(parents=True, exist_ok=True)
            if not self.root.is_dir():
                raise PermanentError(f"{self.config.name}: {self.root} is not a folder")
        return self.root

    def _inside(self, path: Path) -> Path:
        """``path`` itself, once its fully resolved form (symlinks followed) is inside the root."""
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise PermanentError(f"{self.config.name}: {path} resolves outside the folder {self.root}")
        return path

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.endswith("/") or key.split("/", 1)[0] == META_DIR or key.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
            raise PermanentError(f"invalid object key {key!r}")
        return self._inside(self._checked_root() / key)

    def _meta_path(self, key: str) -> Path:
        return self.root / META_DIR / f"{key}.json"

    @contextlib.contextmanager
    def _os_errors(self, path: Path) -> Iterator[None]:
        try:
            yield
        except PermissionError as exc:
            raise PermanentError(f"{self.config.name}: permission denied on {path}") from exc
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                # Staff must free space, but the file is not at fault: not permanent, so the next run after space
                # is freed puts it here again instead of leaving this folder out of its placement for good.
                raise PermanentError(f"{self.config.name}: disk full writing {path}", permanent=False) from exc
            if exc.errno == errno.EROFS:
                raise PermanentError(f"{self.config.name}: {path} is on a read-only file system") from exc
            cls = TransientError if exc.errno in TRANSIENT_ERRNOS else PermanentError
            raise cls(f"{self.config.name}: {exc.strerror or exc} on {path}") from exc

    # -- the operations ----------------------------------------------------------------------------
    def put(
        self,
        key: str,
        stream: IO[bytes],
        size: int,
        *,
        sha256: str,
        content_type: str = "application/octet-stream",
        storage_class: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        path = self._path(key)
        self.storage_class_for(storage_class)
        reader = HashingReader(stream, size, sha256)
        tmp = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            with self._os_errors(path):
                path.parent.mkdir(parents=True, exist_ok=True)
                self._inside(path.parent)
                with open(tmp, "xb") as out:
                    remaining = size
                    while remaining:
                        chunk = reader.read(min(CHUNK, remaining))
                        out.write(chunk)
                        remaining -= len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                reader.check()
                written = _sha256_of(tmp)
                if written != reader.hexdigest():
                    raise IntegrityError(f"{self.config.name}: {path} reads back with a different sha256")
                stat = tmp.stat()
                self._write_meta(key, {"content_type": content_type, "metadata": metadata or {},
                                       "sha256": written, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
                os.replace(tmp, path)
                _fsync_dir(path.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            self._prune(path.parent)
            raise
        return ObjectInfo(key=key, size=stat.st_size, storage_class="", checksums={"sha256": written},
                          modified=_mtime(stat), metadata=dict(metadata or {}))

    def open(self, key: str) -> IO[bytes]:
        path = self._path(key)
        with self._os_errors(path):
            try:
                return open(path, "rb")  # noqa: SIM115 - the caller closes it
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise ObjectNotFound(f"{self.config.name}: no object {key!r}") from None

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        with self._os_errors(path):
            try:
                stat = path.stat()
            except (FileNotFoundError, NotADirectoryError):
                return None
            if not path.is_file():
                return None
            meta = self._read_meta(key)
        fresh = meta.get("size") == stat.st_size and meta.get("mtime_ns") == stat.st_mtime_ns
        return ObjectInfo(key=key, size=stat.st_size, storage_class="",
                          checksums={"sha256": meta["sha256"]} if fresh and meta.get("sha256") else {},
                          modified=_mtime(stat), metadata=meta.get("metadata", {}) if fresh else {})

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._os_errors(path):
            if path.is_dir() and not path.is_symlink():
                raise PermanentError(f"{self.config.name}: {path} is a folder, not an object")
            path.unlink(missing_ok=True)
            self._meta_path(key).unlink(missing_ok=True)
        self._prune(path.parent)
        self._prune(self._meta_path(key).parent)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if prefix:
            validate_key(prefix)
        root = self._checked_root()
        start_rel = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = root / start_rel if start_rel else root
        if start_rel:
            self._inside(start)
        yield from self._walk(start, start_rel, prefix)

    def _walk(self, directory: Path, rel: str, prefix: str) -> Iterator[ObjectInfo]:
        with self._os_errors(directory):
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                return
        # Sorting directories as "name/" yields keys in the same order a flat key sort would.
        entries.sort(key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name)
        for entry in entries:
            key = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink() or entry.name.startswith(TMP_PREFIX) or (not rel and entry.name == META_DIR):
                continue
            if entry.is_dir(follow_symlinks=False):
                if (key + "/").startswith(prefix) or prefix.startswith(key + "/"):
                    yield from self._walk(Path(entry.path), key, prefix)
            elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                with self._os_errors(Path(entry.path)):
                    try:
                        stat = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # deleted since the folder was read (a move or prune meanwhile): not listed
                yield ObjectInfo(key=key, size=stat.st_size, storage_class="", modified=_mtime(stat))

    def probe(self) -> Probe:
        result = super().probe()
        marker = self.config.options.get("agent_marker")
        if not result.ok or not marker:
            return result
        error = self._agent_marker_error(Path(marker) if Path(marker).is_absolute() else self.root / marker)
        return Probe(False, result.latency_ms, error) if error else result

    def _agent_marker_error(self, marker: Path) -> str:
        try:
            mtime = marker.stat().st_mtime
        except FileNotFoundError:
            return (f"backup agent marker {marker} is missing: the agent (e.g. Carbonite) has not completed a "
                    f"backup of {self.root}, or watches another folder")
        except OSError as exc:
            return f"cannot read backup agent marker {marker}: {exc.strerror or exc}"
        age_hours = (time.time() - mtime) / 3600
        if age_hours > self.agent_max_age_hours:
            last = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
            return (f"backup agent marker {marker} is {age_hours:.1f} h old (limit {self.agent_max_age_hours:g} h): "
                    f"the agent's last completed backup was at {last}; check that it is running")
        return ""

    # -- sidecar metadata ----------------------------------------------------------------------------
    def _write_meta(self, key: str, meta: dict[str, Any]) -> None:
        path = self._meta_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            with open(tmp, "x", encoding="utf-8") as out:
                json.dump(meta, out, ensure_ascii=False)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _read_meta(self, key: str) -> dict[str, Any]:
        try:
            with open(self._meta_path(key), encoding="utf-8") as fh:
                meta = json.load(fh)
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def _prune(self, directory: Path) -> None:
        """Remove folders a failed put or a delete left empty, up to (never including) the root."""
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:  # some network mounts refuse fsync on a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _mtime(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(stat.st_mtime, UTC)
