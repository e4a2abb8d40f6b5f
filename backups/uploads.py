"""Upload one replica: the verified put, and the Replica row written only after the checksums matched."""

from __future__ import annotations

import logging
from pathlib import Path

from django.db.models import F
from django.utils import timezone

from providers.backends import backend_cached
from providers.backends.base import Backend, IntegrityError, ProviderError
from providers.breaker import breaker_allows, breaker_record

from . import encryption
from .layout import object_key
from .limits import provider_slot
from .models import Asset, BackupJob, Replica

log = logging.getLogger(__name__)
INTEGRITY_ATTEMPTS = 3


class SourceChanged(Exception):
    """The file on disk no longer matches the catalogued sha256: re-import before backing it up."""


def replica_is_current(replica: Replica, asset: Asset) -> bool:
    return replica.status == Replica.Status.VERIFIED and replica.sha256 == asset.sha256


def replica_upload(replica: Replica, *, backend: Backend | None = None, job: BackupJob | None = None) -> bool:
    """Upload the asset to the replica's provider. True when verified. Idempotent: a current copy is left alone.

    A crash at any line leaves the row in ``planned``/``uploading`` (never ``verified``) and the object,
    if written, at the same deterministic key, so the next run simply puts it again.
    """
    asset = replica.asset
    if replica_is_current(replica, asset):
        return True
    if not breaker_allows(replica.provider_id):  # fail fast: the next round routes around an open breaker
        Replica.objects.filter(pk=replica.pk).update(
            status=Replica.Status.FAILED, last_error="provider down: redirected", permanent_failure=False,
            updated=timezone.now(),
        )
        return False
    backend = backend or backend_cached(replica.provider)
    key = object_key(asset)
    Replica.objects.filter(pk=replica.pk).update(
        status=Replica.Status.UPLOADING, object_key=key, attempts=F("attempts") + 1, updated=timezone.now()
    )
    error: ProviderError | SourceChanged | OSError | None = None
    for _attempt in range(INTEGRITY_ATTEMPTS):
        try:
            with provider_slot(replica.provider_id):
                info = _put(backend, key, replica, asset)
        except IntegrityError as exc:
            # A flipped byte in transit or a source that changed: re-read and retry; never accepted.
            error = exc
            if _source_changed(asset):
                error = SourceChanged(f"{asset.relative_path} changed on disk since import; import it again")
                break
            continue
        except (ProviderError, OSError) as exc:
            error = exc
            break
        Replica.objects.filter(pk=replica.pk).update(
            status=Replica.Status.VERIFIED, size=info.size, checksums=info.checksums, sha256=asset.sha256,
            storage_class=info.storage_class or replica.storage_class, version_id=info.version_id or "",
            etag=info.etag or "", verified_at=timezone.now(), last_error="", permanent_failure=False,
            region=replica.provider.region, updated=timezone.now(),
        )
        breaker_record(replica.provider_id, True)
        if job is not None:
            BackupJob.objects.filter(pk=job.pk).update(bytes_done=F("bytes_done") + asset.size)
        return True
    if isinstance(error, ProviderError):  # local problems (source changed, unreadable) are not the provider's
        breaker_record(replica.provider_id, False, _describe(error), source="upload")
    permanent = isinstance(error, SourceChanged | OSError) or bool(getattr(error, "permanent", False))
    Replica.objects.filter(pk=replica.pk).update(
        status=Replica.Status.FAILED, last_error=_describe(error), permanent_failure=permanent,
        updated=timezone.now(),
    )
    if job is not None:
        BackupJob.objects.filter(pk=job.pk).update(bytes_failed=F("bytes_failed") + asset.size)
    log.warning("upload of %s to %s failed: %s", asset.relative_path, replica.provider.name, _describe(error))
    return False


def _put(backend: Backend, key: str, replica: Replica, asset: Asset):
    """One streamed put of the source file, encrypted client-side when the replica says so."""
    source = Path(asset.source_location)
    metadata = {"sha256": asset.sha256, "wedding": asset.wedding.slug}
    if not replica.encrypted:
        with open(source, "rb") as fh:
            return backend.put(key, fh, asset.size, sha256=asset.sha256, content_type=asset.content_type,
                               storage_class=replica.storage_class or None, metadata=metadata)
    data_key = encryption.wedding_data_key(asset.wedding)
    with open(source, "rb") as fh:  # first pass: the stored form's sha256, declared to the provider up front
        stored_sha = encryption.stored_sha256(fh, data_key, asset.sha256)
    with open(source, "rb") as fh:
        reader = encryption.EncryptingReader(fh, data_key, asset.sha256)
        metadata["encryption"] = encryption.ALGORITHM
        return backend.put(key, reader, asset.size + encryption.OVERHEAD, sha256=stored_sha,
                           content_type="application/octet-stream", storage_class=replica.storage_class or None,
                           metadata=metadata)


def _source_changed(asset: Asset) -> bool:
    from .ingest import hash_file

    try:
        size, sha, _ = hash_file(Path(asset.source_location))
    except OSError:
        return True
    return (size, sha) != (asset.size, asset.sha256)


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    if isinstance(error, FileNotFoundError):
        return "source file is missing; restore it to the folder or re-import the wedding"
    if isinstance(error, PermissionError):
        return "source file cannot be read (permission denied)"
    return f"{type(error).__name__}: {error}"
