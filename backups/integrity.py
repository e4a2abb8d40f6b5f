"""Is a stored copy what we recorded? The one check verify, scrub and the guarded delete share."""

from __future__ import annotations

import hashlib

from providers.backends.base import Backend, IntegrityError

from . import encryption
from .models import Replica


def _checksums_agree(stored: dict[str, str], reported: dict[str, str]) -> bool:
    common = set(stored) & set(reported)
    return all(stored[a].lower() == reported[a].lower() for a in common)


def replica_check(replica: Replica, backend: Backend, *, deep: bool) -> str:
    """Empty when the replica is what we recorded; otherwise why not. ProviderError propagates."""
    info = backend.head(replica.object_key)
    if info is None:
        return "missing on the provider"
    if info.size != replica.size:
        return f"size {info.size} differs from the recorded {replica.size}"
    if info.checksums and not _checksums_agree(replica.checksums, info.checksums):
        return "provider checksum differs from the recorded one"
    if deep:
        digest = hashlib.sha256()
        key = encryption.wedding_data_key(replica.asset.wedding) if replica.encrypted else None
        with backend.open(replica.object_key) as fh:
            try:
                for chunk in encryption.plaintext_chunks(fh, encrypted=replica.encrypted, data_key=key):
                    digest.update(chunk)
            except IntegrityError as exc:
                return str(exc)
        if digest.hexdigest() != replica.sha256:
            return "sha256 of the stored bytes differs"
    return ""
