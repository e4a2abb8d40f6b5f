"""One file from its replicas to disk: best replica first, sha256 checked as the bytes pass (one hash per byte),
written under a temporary name and renamed into place only when it matched; on any error the next replica.

No database and no breaker here: this runs in a restore's threads, and the caller records the outcome."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from providers.backends import backend_for
from providers.backends.base import Backend, IntegrityError, NeedsRestore, ObjectNotFound, ProviderError
from providers.models import Provider

from . import encryption
from .limits import SlotTimeout
from .models import Asset, Replica

log = logging.getLogger(__name__)
TEMP_PREFIX = ".restore-"


@dataclass
class FileOutcome:
    """What restoring one file came to: which provider served it, and every failed attempt before."""

    ok: bool = False
    provider_id: int | None = None
    fallbacks: int = 0
    errors: list[str] = field(default_factory=list)  # "provider: why", in the order tried
    failures: list[tuple[int, str]] = field(default_factory=list)  # (provider id, error) for its breaker
    rehydrating: list[str] = field(default_factory=list)


def replicas_best_first(replicas: list[Replica], hours: dict[tuple[int, str], float]) -> list[Replica]:
    """Best first: instantly readable, healthy, then the provider's name for a stable order."""
    def score(r: Replica) -> tuple:
        return (hours.get((r.provider_id, r.storage_class), 0) > 0,
                r.provider.status != Provider.Status.ACTIVE, r.provider.name)

    return sorted(replicas, key=score)


def replica_open(backend: Backend, replica: Replica):
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


def _copy(out: BinaryIO, src: IO[bytes], replica: Replica, data_key: bytes | None) -> tuple[int, str]:
    """Write the replica's plaintext to ``out``, hashing each byte once: (size, sha256)."""
    digest, size = hashlib.sha256(), 0
    for chunk in encryption.plaintext_chunks(src, encrypted=replica.encrypted, data_key=data_key):
        digest.update(chunk)
        size += len(chunk)
        _write_all(out, chunk)
    return size, digest.hexdigest()


def _settle(out: BinaryIO, size: int, sha256: str, asset: Asset) -> None:
    """On disk (fsynced) and what the catalogue holds, or raise (after the provider's slot was given back)."""
    os.fsync(out.fileno())
    if os.fstat(out.fileno()).st_size != size:  # what the file holds, not what we meant to write
        raise OSError(errno.EIO, f"the restored file holds other than the {size} bytes written")
    if size != asset.size or sha256 != asset.sha256:
        raise IntegrityError("sha256 of the restored bytes differs from the catalogue")


def _write_all(out: BinaryIO, data: bytes) -> None:
    """An unbuffered write may take only part of the bytes (a disk filling up): write the rest, or fail."""
    view = memoryview(data)
    while view:
        written = out.write(view)
        if not written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def file_restore(asset: Asset, target: Path, candidates: list[Replica], backends: dict[int, Backend], *,
                 include_archived: bool, data_key: Callable[[], bytes | None] = lambda: None,
                 slot: Callable[[int], AbstractContextManager] | None = None,
                 avoid: set[int] | None = None) -> FileOutcome:
    """Try each candidate until one yields bytes whose sha256 matches; nothing is ever visible under ``target``
    but the whole, checked file. ``slot(provider_id)`` is held while a replica is read; providers in ``avoid``
    (failed earlier in this restore) are tried last, and a provider failing here is added to it. An OSError of
    the target folder itself (a file where a folder should be) propagates."""
    out = FileOutcome()
    ordered = candidates if not avoid else sorted(candidates, key=lambda r: r.provider_id in avoid)
    target.parent.mkdir(parents=True, exist_ok=True)
    for replica in ordered:
        backend = backends.get(replica.provider_id) or backends.setdefault(replica.provider_id,
                                                                           backend_for(replica.provider))
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb", buffering=0) as dest:
                key = data_key() if replica.encrypted else None
                with (slot(replica.provider_id) if slot else contextlib.nullcontext(),
                      replica_open(backend, replica) as src):
                    size, sha256 = _copy(dest, src, replica, key)
                _settle(dest, size, sha256, asset)
            os.replace(tmp, target)
            # From a fallback replica: any but the best one (tried first, or last once it failed for others).
            out.ok, out.provider_id, out.fallbacks = True, replica.provider_id, candidates.index(replica)
            return out
        except NeedsRestore as exc:
            out.errors.append(f"{replica.provider.name}: {exc}")
            if include_archived:
                backend.request_restore(replica.object_key)
                out.rehydrating.append(f"{replica.provider.name}: {asset.relative_path}")
        except (ProviderError, OSError, SlotTimeout) as exc:
            out.errors.append(f"{replica.provider.name}: {exc}")
            if isinstance(exc, ProviderError) and not isinstance(exc, ObjectNotFound):
                out.failures.append((replica.provider_id, str(exc)))
                if avoid is not None and not isinstance(exc, IntegrityError):
                    avoid.add(replica.provider_id)  # unreachable: the other files try it last
        finally:
            if not out.ok:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
    return out
