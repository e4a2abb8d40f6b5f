"""Upload an asset to its replicas' providers: one read of the source for every target, each target's
verified put, and the Replica rows written as verified only after the provider's checksum matched."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections import Counter
from concurrent.futures import Executor
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from providers.backends import backend_cached
from providers.backends.base import Backend, HashedBuffer, IntegrityError, ObjectInfo, ProviderError
from providers.breaker import breaker_allows, breaker_record

from . import encryption
from .copysource import DISK_FULL_ERRNOS, copy_discard, copy_fetch
from .ingest import hash_file
from .layout import object_key
from .limits import ProviderSlots, provider_slot
from .models import Asset, BackupJob, Replica
from .tee import HashingFile, Tee
from .upload_errors import CopiesOutOfReach, SourceChanged, error_describe, error_is_permanent

log = logging.getLogger(__name__)
INTEGRITY_ATTEMPTS = 3


def replica_is_current(replica: Replica, asset: Asset) -> bool:
    return replica.status == Replica.Status.VERIFIED and replica.sha256 == asset.sha256


class BatchBook:
    """The bookkeeping of one upload batch, written in few statements.

    Verified replicas are kept here and written with one ``bulk_update`` (with the job's counters, in one
    transaction) every ``flush_every`` finished assets and at the end, so progress stays visible during a
    batch. A crash before a flush leaves those rows ``uploading``, never ``verified``: the next round puts
    them again at the same key. Successes reach each provider's breaker as one record per provider (each
    success still counted in its window), always before a failure of that provider is recorded, so
    consecutive-failure counting sees them in order. Failures keep the per-upload path.
    """

    FIELDS = ("status", "size", "checksums", "sha256", "storage_class", "version_id", "etag", "verified_at",
              "last_error", "permanent_failure", "region", "updated")

    def __init__(self, job: BackupJob | None, *, flush_every: int = 8):
        self.job = job
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._rows: list[Replica] = []
        self._bytes = self._done = self._failed = self._assets = 0
        self._successes: Counter[int] = Counter()
        self.totals = Counter()  # over the whole batch: verified, done, failed, flushes, breaker_records

    def verified(self, replica: Replica, info: ObjectInfo) -> None:
        asset, now = replica.asset, timezone.now()
        replica.status, replica.size, replica.checksums = Replica.Status.VERIFIED, info.size, info.checksums
        replica.sha256, replica.version_id, replica.etag = asset.sha256, info.version_id or "", info.etag or ""
        replica.storage_class = info.storage_class or replica.storage_class
        replica.verified_at, replica.updated, replica.last_error = now, now, ""
        replica.permanent_failure, replica.region = False, replica.provider.region
        with self._lock:
            self._rows.append(replica)
            self._bytes += asset.size
            self._successes[replica.provider_id] += 1
            self.totals["verified"] += 1

    def asset_finished(self, ok: bool) -> None:
        with self._lock:
            self._done += ok
            self._failed += not ok
            self._assets += 1
            due = self._assets >= self.flush_every
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
            counters = {"bytes_done": self._bytes, "files_done": self._done, "files_failed": self._failed}
            self._bytes = self._done = self._failed = self._assets = 0
            self.totals["done"] += counters["files_done"]
            self.totals["failed"] += counters["files_failed"]
        if not rows and not any(counters.values()):
            return
        with transaction.atomic():
            if rows:
                replicas_write(rows, self.FIELDS)
            if self.job is not None and any(counters.values()):
                BackupJob.objects.filter(pk=self.job.pk).update(
                    **{name: F(name) + value for name, value in counters.items() if value})
        with self._lock:
            self.totals["flushes"] += 1

    def record_successes(self, provider_id: int | None = None) -> None:
        """Tell the breakers of the successes not yet recorded (one provider's, or all)."""
        with self._lock:
            ids = [provider_id] if provider_id is not None else list(self._successes)
            pending = {pid: self._successes.pop(pid, 0) for pid in ids}
        for pid, n in pending.items():
            if n:
                breaker_record(pid, True, count=n)
                with self._lock:
                    self.totals["breaker_records"] += 1

    def close(self) -> None:
        self.flush()
        self.record_successes()


def replicas_write(rows: list[Replica], fields: tuple[str, ...]) -> None:
    """Write these fields of these replicas in one statement.

    On PostgreSQL one ``UPDATE ... FROM (VALUES ...)``: Django's ``bulk_update`` builds a CASE per field over
    every row, whose compilation cost more CPU than the uploads' HTTP calls. Elsewhere ``bulk_update``.
    """
    gone = [Replica.Status.DELETING, Replica.Status.DELETED]  # pruned meanwhile: the object may be gone
    if connection.vendor != "postgresql":
        Replica.objects.exclude(status__in=gone).bulk_update(rows, fields)
        return
    model = [Replica._meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name

    def cast(field) -> str:  # text, not varchar(n): a cast would cut a long value short, the column refuses it
        return "text" if field.get_internal_type() in ("CharField", "TextField") else field.db_type(connection)

    row_sql = "(%s::bigint, " + ", ".join(f"%s::{cast(f)}" for f in model) + ")"
    params: list = []
    for r in rows:
        params.append(r.pk)
        params.extend(f.get_db_prep_save(getattr(r, f.attname), connection) for f in model)
    columns = ", ".join(quote(f.column) for f in model)
    sets = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in model)
    table = quote(Replica._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} AS t SET {sets} FROM (VALUES {', '.join([row_sql] * len(rows))}) "  # noqa: S608 - names from the model
                       f"AS v(id, {columns}) WHERE t.id = v.id AND t.status <> ALL(%s)", [*params, gone])


class Source:
    """One asset's bytes for all of its targets, read once.

    A file up to ``buffer_limit`` bytes (most photos) is read once, its size and sha256 checked against the
    catalogue as it is read (``SourceChanged`` otherwise, before any target sees a byte), and every target
    gets that same verified buffer (and, when encrypted, one shared ciphertext). A larger file that several
    targets take at once (``tee_for``: how many plain and how many encrypted) goes through a bounded tee
    (``backups.tee``): one read feeds them all, its sha256 checked on the way, memory bounded by a few parts;
    a target that falls behind, or retries its put, reads the file itself, its sha256 checked as it goes.
    """

    def __init__(self, asset: Asset, *, buffer_limit: int, data_key: bytes | None = None, path: Path | None = None,
                 tee_for: Counter[bool] | None = None):
        self.asset = asset
        self.path = path or Path(asset.source_location)
        self.data_key = data_key
        self.data: bytes | None = None
        self.chunk = buffer_limit  # the tee reads a part size at a time
        self._stored: tuple[bytes | None, str] | None = None  # encrypted buffer (or None) and its sha256
        self._lock = threading.Lock()
        self._tee_for = tee_for or Counter()
        self._tees: dict[bool, Tee] = {}
        if asset.size <= buffer_limit:
            with open(self.path, "rb") as fh:
                data = fh.read(asset.size + 1)  # one byte more: a file that grew is caught too
            if len(data) != asset.size or hashlib.sha256(data).hexdigest() != asset.sha256:
                raise SourceChanged(f"{asset.relative_path} changed on disk since import; import it again")
            self.data = data
        elif self.path.stat().st_size != asset.size:  # streamed: its sha256 is checked on the way
            raise SourceChanged(f"{asset.relative_path} changed on disk since import; import it again")

    def changed(self) -> bool:
        """After an IntegrityError: is the source to blame? A checked buffer never is (the transit was)."""
        if self.data is not None:
            return False
        return any(t.changed() for t in self._tees.values()) or _source_changed(self.asset, self.path)

    def close(self) -> None:
        """Stop the tees' reading threads (every put has ended)."""
        for tee in self._tees.values():
            tee.close()

    def put(self, backend: Backend, key: str, replica: Replica, *, first: bool = True) -> ObjectInfo:
        """One target's verified put; ``first``: its first attempt (a retry reads the file on its own)."""
        asset = self.asset
        metadata = {"sha256": asset.sha256, "wedding": asset.wedding.slug}
        # Object Lock where planned: not even our own credentials can delete or overwrite it before then.
        args = {"storage_class": replica.storage_class or None, "metadata": metadata}
        if replica.retain_until and backend.locks():
            args["retain_until"] = replica.retain_until
        size, sha, args["content_type"] = asset.size, asset.sha256, asset.content_type
        if replica.encrypted:
            metadata["encryption"] = encryption.ALGORITHM
            stored, sha = self._stored_form()
            size, args["content_type"] = asset.size + encryption.OVERHEAD, "application/octet-stream"
            if stored is not None:
                return backend.put(key, HashedBuffer(stored, sha), size, sha256=sha, **args)
        elif self.data is not None:
            return backend.put(key, HashedBuffer(self.data, sha), size, sha256=sha, **args)
        tee = self._tee(replica.encrypted) if first else None
        with contextlib.ExitStack() as stack:
            if tee is not None:
                stream = stack.enter_context(tee.reader())
            else:
                stream = stack.enter_context(open(self.path, "rb"))
                if replica.encrypted:
                    stream = encryption.EncryptingReader(stream, self.data_key, asset.sha256)
            return backend.put(key, stream, size, sha256=sha, **args)

    def _tee(self, encrypted: bool) -> Tee | None:
        """The tee of this form (plain or encrypted), made for the targets taking it at once (two or more)."""
        if self._tee_for[encrypted] < 2:
            return None
        with self._lock:
            if encrypted not in self._tees:
                stored = (self.data_key, self._stored[1]) if encrypted and self._stored else None
                self._tees[encrypted] = Tee(self.path, size=self.asset.size, sha256=self.asset.sha256,
                                            chunk=self.chunk, readers=self._tee_for[encrypted], encrypt=stored)
            return self._tees[encrypted]

    def _stored_form(self) -> tuple[bytes | None, str]:
        """The encrypted form's bytes (buffered sources) and sha256, computed once for every target."""
        with self._lock:
            if self._stored is None:
                if self.data is not None:
                    stored = encryption.encrypt_bytes(self.data, self.data_key, self.asset.sha256)
                    self._stored = (stored, hashlib.sha256(stored).hexdigest())
                else:  # first pass over the file: the stored form's sha256, declared to the provider up front
                    with open(self.path, "rb") as fh:
                        plain = HashingFile(fh)
                        sha = encryption.stored_sha256(plain, self.data_key, self.asset.sha256)
                    if (plain.count, plain.digest.hexdigest()) != (self.asset.size, self.asset.sha256):
                        raise SourceChanged(f"{self.asset.relative_path} changed on disk since import; "
                                            "import it again")
                    self._stored = (None, sha)
            return self._stored


def _target_put(backend: Backend, key: str, replica: Replica, source: Source, *,
                slots: ProviderSlots | None) -> ObjectInfo:
    """One target's verified put under the provider's slot (the batch's, else one of its own); integrity
    failures retried. No database here."""
    error: IntegrityError | None = None
    for _attempt in range(INTEGRITY_ATTEMPTS):
        try:
            with slots.hold(replica.provider_id) if slots is not None else provider_slot(replica.provider_id):
                return source.put(backend, key, replica, first=_attempt == 0)
        except IntegrityError as exc:
            # A flipped byte in transit or a source that changed: retry; never accepted.
            error = exc
            if source.changed():
                raise SourceChanged(f"{source.asset.relative_path} changed on disk since import; "
                                    "import it again") from exc
    assert error is not None
    raise error


def asset_upload(asset: Asset, replicas: list[Replica], *, book: BatchBook, pool: Executor | None = None,
                 backends: dict[int, Backend] | None = None, slots: ProviderSlots | None = None,
                 down: set[int] | None = None) -> dict[int, bool]:
    """Upload one asset to every one of its replicas' providers from one read of the source.

    Replica pk -> verified. Idempotent: current copies are left alone. Verified rows reach the database
    through ``book`` (only after the provider's checksum matched); failures are written at once. A batch
    passes its ``slots`` (kept from one file to the next) and the providers it knows to be ``down`` (its
    breakers read at most once a second); alone, each put takes a slot and each breaker is read.
    """
    results: dict[int, bool] = {}
    todo: list[Replica] = []
    for replica in replicas:
        if replica_is_current(replica, asset):
            results[replica.pk] = True
        elif (replica.provider_id in down if down is not None else not breaker_allows(replica.provider_id)):
            # fail fast: the next round routes around it
            Replica.objects.filter(pk=replica.pk).update(
                status=Replica.Status.FAILED, last_error=Replica.REDIRECTED, permanent_failure=False,
                updated=timezone.now(),
            )
            results[replica.pk] = False
        else:
            todo.append(replica)
    if not todo:
        return results
    key = object_key(asset)
    Replica.objects.filter(pk__in=[r.pk for r in todo]).update(
        status=Replica.Status.UPLOADING, object_key=key, attempts=F("attempts") + 1, updated=timezone.now()
    )
    for r in todo:
        r.status, r.object_key, r.attempts = Replica.Status.UPLOADING, key, r.attempts + 1
    data_key = encryption.wedding_data_key(asset.wedding) if any(r.encrypted for r in todo) else None
    # Targets put at once share one read of a large file (the tee); one after another, each reads it.
    tee_for = Counter(r.encrypted for r in todo) if pool is not None and len(todo) > 1 else None
    stand_in, source = None, None
    try:
        source = Source(asset, buffer_limit=settings.WEDBACKUP_PART_SIZE, data_key=data_key, tee_for=tee_for)
    except (SourceChanged, OSError) as exc:
        # The studio's file is gone or changed: a verified copy elsewhere still holds the catalogued bytes.
        reason: BaseException = exc
        try:
            stand_in = copy_fetch(asset=asset, exclude={r.pk for r in todo})
        except (ProviderError, OSError, ValueError) as fetch_error:
            log.warning("no copy could stand in for %s: %s", asset.relative_path, fetch_error)
            if isinstance(fetch_error, OSError) and fetch_error.errno in DISK_FULL_ERRNOS:
                reason = fetch_error  # the worker's disk is full: that is what staff must fix, not the source
        if stand_in is None:
            if reason is exc and _copies_elsewhere(asset, exclude={r.pk for r in todo}):
                reason = CopiesOutOfReach(f"{error_describe(exc)}; its verified copies could not be read now: "
                                          "the next round tries them again")
            for r in todo:
                results[r.pk] = _failed(r, reason, book)
            return results
    try:
        if stand_in is not None:
            source = Source(asset, buffer_limit=settings.WEDBACKUP_PART_SIZE, data_key=data_key, path=stand_in,
                            tee_for=tee_for)
        _targets_put(asset, todo, key, source, book=book, pool=pool, backends=backends, slots=slots,
                     results=results)
    finally:
        if source is not None:
            source.close()
        if stand_in is not None:
            copy_discard(stand_in)
    return results


def _targets_put(asset: Asset, todo: list[Replica], key: str, source: Source, *, book: BatchBook,
                 pool: Executor | None, backends: dict[int, Backend] | None, slots: ProviderSlots | None,
                 results: dict[int, bool]) -> None:
    """Put to every target from the one source; each target's outcome goes into ``results``."""

    def put(replica: Replica) -> ObjectInfo:
        backend = (backends or {}).get(replica.pk) or backend_cached(replica.provider)
        return _target_put(backend, key, replica, source, slots=slots)

    # A buffered file (up to the part size: most photos) goes to its targets one after another in this thread:
    # each put is CPU more than waiting, and handing it to the pool cost more CPU than it saved (17 % of the
    # engine's client CPU on 3,000 small files; bench/RESULTS.md). A larger file's targets run at once from
    # its tee. The batch's asset threads give the concurrency (WEDBACKUP_ASSET_THREADS).
    if pool is None or len(todo) == 1 or source.data is not None:
        outcomes = []
        for r in todo:
            try:
                outcomes.append((r, put(r), None))
            except (ProviderError, SourceChanged, OSError) as exc:
                outcomes.append((r, None, exc))
    else:
        futures = [(r, pool.submit(put, r)) for r in todo]
        outcomes = []
        for r, future in futures:  # every target runs to its end: one failing never cancels the others
            try:
                outcomes.append((r, future.result(), None))
            except (ProviderError, SourceChanged, OSError) as exc:
                outcomes.append((r, None, exc))
    for r, info, exc in outcomes:
        if exc is None:
            book.verified(r, info)
            results[r.pk] = True
        else:
            results[r.pk] = _failed(r, exc, book)


def _copies_elsewhere(asset: Asset, *, exclude: set[int]) -> bool:
    return asset.replicas.filter(status=Replica.Status.VERIFIED, sha256=asset.sha256).exclude(pk__in=exclude).exists()


def _failed(replica: Replica, error: BaseException, book: BatchBook) -> bool:
    asset = replica.asset
    if isinstance(error, ProviderError):  # local problems (source changed, unreadable) are not the provider's
        book.record_successes(replica.provider_id)  # earlier successes first: the breaker sees them in order
        breaker_record(replica.provider_id, False, error_describe(error), source="upload")
    permanent = error_is_permanent(error)
    Replica.objects.filter(pk=replica.pk).update(
        status=Replica.Status.FAILED, last_error=error_describe(error), permanent_failure=permanent,
        updated=timezone.now(),
    )
    replica.status = Replica.Status.FAILED
    if book.job is not None:
        BackupJob.objects.filter(pk=book.job.pk).update(bytes_failed=F("bytes_failed") + asset.size)
    log.warning("upload of %s to %s failed: %s", asset.relative_path, replica.provider.name, error_describe(error))
    return False


def replica_upload(replica: Replica, *, backend: Backend | None = None, job: BackupJob | None = None) -> bool:
    """Upload the asset to one replica's provider. True when verified. Idempotent: a current copy is left alone.

    A crash at any line leaves the row in ``planned``/``uploading`` (never ``verified``) and the object,
    if written, at the same deterministic key, so the next run simply puts it again.
    """
    book = BatchBook(job)
    try:
        ok = asset_upload(replica.asset, [replica], book=book,
                          backends={replica.pk: backend} if backend is not None else None)[replica.pk]
    finally:
        book.close()
    return ok


def _source_changed(asset: Asset, path: Path) -> bool:
    try:
        size, sha, _ = hash_file(path)
    except OSError:
        return True
    return (size, sha) != (asset.size, asset.sha256)
