"""Is a stored copy what we recorded? The one check verify, scrub and the guarded delete share."""

from __future__ import annotations

import hashlib
from typing import IO

from providers.backends.base import Backend, IntegrityError, ObjectNotFound

from . import encryption
from .models import Replica


def _checksums_agree(stored: dict[str, str], reported: dict[str, str]) -> bool:
    common = set(stored) & set(reported)
    return all(stored[a].lower() == reported[a].lower() for a in common)


class _Counting:
    """A read-only stream that counts the stored bytes read through it."""

    def __init__(self, stream: IO[bytes]):
        self._stream, self.count = stream, 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.count += len(data)
        return data


def replica_check(replica: Replica, backend: Backend, *, deep: bool) -> str:
    """Empty when the replica is what we recorded; otherwise why not. ProviderError propagates.

    Shallow: a HEAD, its size and the provider's checksums against the recorded ones. Deep: the bytes themselves,
    read once (one GET, no HEAD: what a HEAD could add is about the provider's metadata, not the bytes), their size
    and the sha256 of their plaintext against the catalogue."""
    if deep:
        return _bytes_check(replica, backend)
    info = backend.head(replica.object_key)
    if info is None:
        return "missing on the provider"
    if info.size != replica.size:
        return f"size {info.size} differs from the recorded {replica.size}"
    if info.checksums and not _checksums_agree(replica.checksums, info.checksums):
        return "provider checksum differs from the recorded one"
    return ""


def _bytes_check(replica: Replica, backend: Backend) -> str:
    digest = hashlib.sha256()
    key = encryption.wedding_data_key(replica.asset.wedding) if replica.encrypted else None
    try:
        fh = backend.open(replica.object_key)
    except ObjectNotFound:
        return "missing on the provider"
    with fh:
        counted = _Counting(fh)
        try:
            for chunk in encryption.plaintext_chunks(counted, encrypted=replica.encrypted, data_key=key):
                digest.update(chunk)
        except IntegrityError as exc:
            if counted.count != replica.size:  # e.g. a truncated encrypted copy: its size says it plainer
                return f"size {counted.count} differs from the recorded {replica.size}"
            return str(exc)
    if counted.count != replica.size:
        return f"size {counted.count} differs from the recorded {replica.size}"
    if digest.hexdigest() != replica.sha256:
        return "sha256 of the stored bytes differs"
    return ""
