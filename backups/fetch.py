"""One file, now: stream a single asset from its best healthy replica, sha256-checked on the way, falling back to
the next replica while nothing has been sent yet."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from django.conf import settings
from django.utils import timezone

from providers.backends import backend_for
from providers.backends.base import IntegrityError, NeedsRestore, ObjectNotFound, ProviderError
from providers.breaker import breaker_record
from providers.models import Provider

from . import encryption
from .audit import audit_record
from .models import Asset, Rehydration, Replica, Wedding
from .placement import provider_states
from .rehydration_models import READY_DAYS
from .restore_copy import replica_open, replicas_best_first
from .signals import wedding_read

log = logging.getLogger(__name__)


class FetchError(Exception):
    """No replica could serve the file; the message lists every attempt."""


class FetchArchived(FetchError):
    """Every good copy sits in an archive class: it must be rehydrated (hours, a fee) before it can be read."""

    def __init__(self, message: str, *, hours: float, providers: list[str]):
        super().__init__(message)
        self.hours, self.providers = hours, providers


@dataclass
class FileFetch:
    asset: Asset
    provider: str
    chunks: Iterator[bytes]
    errors: list[str] = field(default_factory=list)  # the replicas tried before this one, and why they failed

    @property
    def filename(self) -> str:
        return self.asset.relative_path.rsplit("/", 1)[-1]


def fetch_candidates(*, asset: Asset) -> tuple[list[Replica], dict[tuple[int, str], float]]:
    """The asset's good copies, best first (as a restore orders them), and the restore hours per class."""
    hours = {(s.id, cls): h for s in provider_states() for cls, h in s.restore_hours.items()}
    candidates = [
        r for r in asset.replicas.select_related("provider")
        if r.status == Replica.Status.VERIFIED and r.sha256 == asset.sha256
        and r.provider.enabled and r.provider.status != Provider.Status.DOWN
    ]
    return replicas_best_first(candidates, hours), hours


def asset_fetch(*, asset: Asset, by) -> FileFetch:
    """Open the best replica that answers and return its verified bytes as an iterator. Small files (up to the
    part size) are read whole and checked before anything is sent, so a bad copy falls back to the next; larger
    ones are checked on the fly and the last chunk is held back until the sha256 matched, so a bad copy ends in
    an error, never in a complete-looking download. Raises FetchArchived or FetchError when nothing can serve it."""
    candidates, hours = fetch_candidates(asset=asset)
    archived = [r for r in candidates if hours.get((r.provider_id, r.storage_class), 0) > 0]
    if candidates and len(archived) == len(candidates):
        rehydrated = rehydrated_replicas(asset=asset)
        if not rehydrated:
            raise _archived(asset, archived, hours)
        candidates = sorted(candidates, key=lambda r: r.pk not in rehydrated)  # the copy brought back first
    errors: list[str] = []
    for replica in candidates:
        try:
            stream = replica_open(backend_for(replica.provider), replica)
        except NeedsRestore as exc:
            errors.append(f"{replica.provider.name}: {exc}")
            continue
        except ProviderError as exc:
            _failed(replica, exc, errors, record=True)
            continue
        try:
            checked = _checked_chunks(asset, replica, stream, done=lambda: _record_access(asset))
            # A small file whole, verified before its first byte goes out; a larger one once its first read (and
            # decryption header) succeeded, so that an unreadable copy still falls back.
            small = asset.size <= settings.WEDBACKUP_PART_SIZE
            chunks = iter([b"".join(checked)]) if small else _primed(checked)
        except (ProviderError, OSError) as exc:
            stream.close()
            _failed(replica, exc, errors, record=False)  # the reading itself recorded it
            continue
        audit_record(by=by, action="asset.download", target=f"asset:{asset.wedding.slug}/{asset.relative_path}",
                     details={"provider": replica.provider.name, "bytes": asset.size, "fallbacks": len(errors)})
        return FileFetch(asset=asset, provider=replica.provider.name, chunks=chunks, errors=errors)
    raise FetchError(f"{asset.relative_path}: " + ("; ".join(errors) or "no verified copy on a healthy provider"))


def rehydrated_replicas(*, asset: Asset) -> set[int]:
    """The archived copies of the asset that a rehydration made readable, for as long as they stay so."""
    since = timezone.now() - dt.timedelta(days=READY_DAYS)
    return set(Rehydration.objects.filter(asset=asset, status=Rehydration.Status.READY, ready_at__gte=since,
                                          replica__isnull=False).values_list("replica_id", flat=True))


def _archived(asset: Asset, archived: list[Replica], hours: dict) -> FetchArchived:
    fastest = min(hours[(r.provider_id, r.storage_class)] for r in archived)
    names = sorted({r.provider.name for r in archived})
    return FetchArchived(f"{asset.relative_path} is only in archive classes ({', '.join(names)}): about "
                         f"{fastest:g} hours to rehydrate, and a rehydration fee applies",
                         hours=fastest, providers=names)


def _checked_chunks(asset: Asset, replica: Replica, stream: IO[bytes], *,
                    done: Callable[[], None]) -> Iterator[bytes]:
    """The plaintext, each chunk passed on only once the next has been read; the last one only after the size
    and sha256 matched the catalogue."""
    key = encryption.wedding_data_key(asset.wedding) if replica.encrypted else None
    digest, size, held = hashlib.sha256(), 0, None
    try:
        for chunk in encryption.plaintext_chunks(stream, encrypted=replica.encrypted, data_key=key):
            digest.update(chunk)
            size += len(chunk)
            if held is not None:
                yield held
            held = chunk
        if size != asset.size or digest.hexdigest() != asset.sha256:
            log.error("download of %s from %s: sha256/size of the bytes read differ from the catalogue",
                      asset.relative_path, replica.provider.name)
            breaker_record(replica.provider_id, False, "a download read damaged bytes", source="download")
            raise IntegrityError(f"{replica.provider.name}: the copy of {asset.relative_path} does not match "
                                 "its sha256")
        if held is not None:
            yield held
        breaker_record(replica.provider_id, True)
        done()
    except ProviderError as exc:
        if not isinstance(exc, IntegrityError):
            log.error("download of %s from %s broke off: %s", asset.relative_path, replica.provider.name, exc)
            breaker_record(replica.provider_id, False, str(exc), source="download")
        raise
    finally:
        stream.close()


def _primed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    first = next(chunks, None)

    def rest() -> Iterator[bytes]:
        if first is not None:
            yield first
        yield from chunks

    return rest()


def _failed(replica: Replica, exc: Exception, errors: list[str], *, record: bool) -> None:
    errors.append(f"{replica.provider.name}: {exc}")
    log.warning("download from %s failed, trying the next copy: %s", replica.provider.name, exc)
    if record and not isinstance(exc, ObjectNotFound):
        breaker_record(replica.provider_id, False, str(exc), source="download")


def _record_access(asset: Asset) -> None:
    wedding_read.send(sender=Wedding, wedding=asset.wedding, kind="download", bytes=asset.size)
