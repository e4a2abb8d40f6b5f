"""Backblaze B2 through b2sdk's native API (``b2sdk.v2``).

Credentials: ``{"application_key_id": ..., "application_key": ...}``. A key restricted to one bucket
works: after authorizing we use the bucket the key allows when ``config.bucket`` is empty, and refuse
clearly when the configured bucket is another one. ``config.endpoint`` is the b2sdk realm (default
``production``).

Uploads stream: at most one part (``config.part_size``, raised to B2's minimum) is held in memory.
Up to one part goes up with ``b2_upload_file``, where B2 checks the SHA-1 we send and reports it back.
Above that we use ``b2_start_large_file`` / ``b2_upload_part`` (SHA-1 per part, checked by B2 and
compared with what it reports) / ``b2_finish_large_file`` (B2 checks the part SHA-1 list again).
``reader.check()`` runs before the commit, and a failed large upload is cancelled. B2 accepts file
info only when a large file starts, before we have seen its bytes, so we cannot record a
``large_file_sha1``; we record the sha256 the caller expects (``wedbackup_sha256``) instead, and
the bytes behind it are vouched for by the part SHA-1s.

B2 keeps versions and hide markers: ``head``/``list`` show the latest visible version only and
``delete`` removes every version and hide marker of the key. There is one storage class (``""``).

B2's S3-compatible endpoint also works through the S3 backend: kind ``aws_s3`` with endpoint
``https://s3.<region>.backblazeb2.com`` and the same key id / key as access key / secret.

Tests hand the constructor an ``api_factory`` that builds a ``B2Api`` over b2sdk's ``RawSimulator``;
production code never passes one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Any, ClassVar

import requests
from b2sdk.v2 import B2Api, FileRetentionSetting, InMemoryAccountInfo, InMemoryCache, RetentionMode
from b2sdk.v2 import exception as b2exc

from .base import (
    Backend,
    BackendConfig,
    HashingReader,
    IntegrityError,
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    ProviderError,
    TransientError,
    validate_key,
    with_retries,
)

SHA256_INFO = "wedbackup_sha256"
MAX_PARTS = 10_000
MAX_PART_SIZE = 5 * 1000**3
CHUNK = 1024 * 1024
log = logging.getLogger(__name__)
_TRANSIENT = (
    b2exc.ServiceError, b2exc.ConnectionReset, b2exc.B2ConnectionError, b2exc.TooManyRequests,
    b2exc.B2RequestTimeout, b2exc.RequestTimeout, b2exc.TruncatedOutput, b2exc.ChecksumMismatch,
)


def _default_api() -> B2Api:
    return B2Api(InMemoryAccountInfo(), InMemoryCache())


class B2Backend(Backend):
    kind: ClassVar[str] = "b2"
    storage_classes: ClassVar[tuple[str, ...]] = ("",)
    # object_lock_mode: governance or compliance, for a bucket with File Lock on; keep_versions: delete() hides
    # the file (the versions stay for the bucket's lifecycle rule) instead of deleting every version.
    known_options: ClassVar[frozenset[str]] = frozenset({"object_lock_mode", "keep_versions"})
    can_lock = True
    reads_versions = True

    def __init__(self, config: BackendConfig, *, api_factory: Callable[[], B2Api] | None = None):
        super().__init__(config)
        self._api_factory = api_factory or _default_api
        self._bucket_name = config.bucket
        self._local = threading.local()

    # -- connection and errors ----------------------------------------------
    def _translate(self, exc: Exception, key: str | None = None) -> ProviderError:
        """In our own words: the server's reply text goes to the log, never into a message a page shows (an
        endpoint someone else runs could put anything there)."""
        where = f"{self.config.name}: B2 bucket {self._bucket_name or '(the one the key allows)'!r}"
        log.info("%s: %s: %s", where, type(exc).__name__, exc)
        if isinstance(exc, b2exc.FileNotPresent):
            return ObjectNotFound(f"{where}: no object {key!r}")
        if isinstance(exc, b2exc.NonExistentBucket | b2exc.BucketIdNotFound):
            return PermanentError(f"{where} does not exist (or the key cannot see it)")
        if isinstance(exc, b2exc.RestrictedBucket | b2exc.BucketNotAllowed):
            return PermanentError(f"{where}: the application key may not use this bucket")
        if isinstance(exc, b2exc.InvalidAuthToken):
            return PermanentError(f"{where}: B2 refused the application key id / key")
        if isinstance(exc, b2exc.Unauthorized | b2exc.AccessDenied):
            return PermanentError(f"{where}: the application key lacks a capability for this")
        if isinstance(exc, b2exc.FileSha1Mismatch | b2exc.PartSha1Mismatch):
            return IntegrityError(f"{where}: B2 received bytes whose SHA-1 differs from ours")
        if isinstance(exc, (*_TRANSIENT, requests.RequestException)):
            return TransientError(f"{where}: {type(exc).__name__}")
        return PermanentError(f"{where}: {type(exc).__name__}")

    def _call(self, fn: Callable[[], Any], key: str | None = None) -> Any:
        try:
            return fn()
        except ProviderError:
            raise
        except (b2exc.B2Error, requests.RequestException) as exc:
            raise self._translate(exc, key) from exc

    def _connect(self) -> tuple[B2Api, Any]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        creds = self.config.credentials
        if not creds.get("application_key_id") or not creds.get("application_key"):
            raise PermanentError(f"{self.config.name}: B2 needs application_key_id and application_key")
        api = self._api_factory()
        realm = self.config.endpoint or "production"
        self._call(lambda: api.authorize_account(realm, creds["application_key_id"], creds["application_key"]))
        allowed = api.account_info.get_allowed()
        name = self.config.bucket or allowed.get("bucketName")
        if not name:
            raise PermanentError(f"{self.config.name}: no B2 bucket configured and the key is not restricted to one")
        if allowed.get("bucketId") and allowed.get("bucketName") != name:
            raise PermanentError(
                f"{self.config.name}: the B2 application key is restricted to bucket "
                f"{allowed.get('bucketName')!r}, so it cannot use bucket {name!r}; use a key for {name!r}"
            )
        self._bucket_name = name
        bucket = self._call(lambda: api.get_bucket_by_name(name))
        self._local.conn = (api, bucket)
        return api, bucket

    # -- the operations -------------------------------------------------------
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
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        """``retain_until``: the file is written under File Lock until then (``object_lock_mode`` providers)."""
        validate_key(key)
        self.storage_class_for(storage_class)
        api, bucket = self._connect()
        info = {**(metadata or {}), SHA256_INFO: sha256}
        lock = self._retention(retain_until) if retain_until is not None else None
        reader = HashingReader(stream, size, sha256)
        part_size = min(MAX_PART_SIZE, max(self.config.part_size, api.account_info.get_absolute_minimum_part_size(),
                                           math.ceil(size / MAX_PARTS)))
        if size <= part_size:
            result, expect_sha1 = self._put_single(api, bucket, key, reader, content_type, info, lock)
        else:  # B2 reports no whole-file SHA-1 for a large file; it checked every part's
            result, expect_sha1 = self._put_large(api, bucket, key, reader, part_size, content_type, info, lock), None
        obj = self._info(result)
        if obj.size != size or obj.checksums.get("sha1") != expect_sha1 or obj.checksums.get("sha256") != sha256:
            with contextlib.suppress(ProviderError):
                self._call(lambda: api.session.delete_file_version(result["fileId"], key), key)
            raise IntegrityError(f"{self.config.name}: B2 reported {obj.size} bytes / {obj.checksums} for {key!r}")
        return obj

    def _retention(self, until: datetime) -> FileRetentionSetting:
        mode = str(self.config.options.get("object_lock_mode", "")).lower()
        if not self.locks() or mode not in ("governance", "compliance"):
            raise PermanentError(f"{self.config.name}: asked to lock a file, but object_lock_mode is not "
                                 "governance or compliance (the bucket must have File Lock on)")
        return FileRetentionSetting(RetentionMode(mode), int(until.timestamp() * 1000))

    def _put_single(self, api: B2Api, bucket: Any, key: str, reader: HashingReader, content_type: str,
                    info: dict[str, str], lock: FileRetentionSetting | None) -> tuple[dict[str, Any], str]:
        data = reader.read_exactly(reader.size)
        _end(reader)  # a changed source is refused before anything is written
        sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
        result = with_retries(lambda: self._call(lambda: api.session.upload_file(
            bucket.id_, key, len(data), content_type, sha1, dict(info), io.BytesIO(data), file_retention=lock), key))
        return result, sha1

    def _put_large(self, api: B2Api, bucket: Any, key: str, reader: HashingReader, part_size: int, content_type: str,
                   info: dict[str, str], lock: FileRetentionSetting | None) -> dict[str, Any]:
        session = api.session
        started = with_retries(lambda: self._call(
            lambda: session.start_large_file(bucket.id_, key, content_type, info, file_retention=lock), key))
        file_id = started["fileId"]
        try:
            sha1s: list[str] = []
            for number in range(1, math.ceil(reader.size / part_size) + 1):
                data = reader.read_exactly(min(part_size, reader.size - reader.read_bytes))
                sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
                part = with_retries(lambda d=data, s=sha1, n=number: self._call(
                    lambda: session.upload_part(file_id, n, len(d), s, io.BytesIO(d)), key))
                if part["contentSha1"] != sha1:
                    raise IntegrityError(f"B2 reported SHA-1 {part['contentSha1']} for part {number} of {key!r}")
                sha1s.append(sha1)
            _end(reader)
            return self._call(lambda: session.finish_large_file(file_id, sha1s), key)
        except BaseException:
            # The original error matters more than a failed cancel; delete(key) cancels leftovers too.
            with contextlib.suppress(Exception):
                session.cancel_large_file(file_id)
            raise

    def open(self, key: str) -> IO[bytes]:
        validate_key(key)
        _, bucket = self._connect()
        return self._reader(key, with_retries(lambda: self._call(lambda: bucket.download_file_by_name(key), key)))

    def open_version(self, key: str, version_id: str) -> IO[bytes]:
        """``version_id`` is the B2 file id of the version (what ``put`` reported)."""
        validate_key(key)
        api, _ = self._connect()
        return self._reader(key, with_retries(lambda: self._call(lambda: api.download_file_by_id(version_id), key)))

    @staticmethod
    def _reader(key: str, downloaded: Any) -> IO[bytes]:
        """A download, SHA-1-checked as it is read (a large file's SHA-1 is in its info, when it was given)."""
        version = downloaded.download_version
        sha1 = version.content_sha1 if version.content_sha1 not in (None, "none") else None
        sha1 = sha1 or version.file_info.get("large_file_sha1")
        return io.BufferedReader(_Download(downloaded.response, version.size, sha1, key), CHUNK)

    def retention_extend(self, key: str, version_id: str, until: datetime) -> None:
        validate_key(key)
        api, _ = self._connect()
        current = self._call(lambda: api.get_file_info(version_id), key).file_retention
        if current is not None and current.retain_until and current.retain_until >= until.timestamp() * 1000:
            return  # never shortened
        self._call(lambda: api.update_file_retention(version_id, key, self._retention(until)), key)

    def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        _, bucket = self._connect()
        # b2_list_file_names shows only the latest visible version, never a hidden one.
        page = with_retries(lambda: self._call(
            lambda: bucket.api.session.list_file_names(bucket.id_, key, 1, None), key))
        files = [f for f in page["files"] if f["fileName"] == key]
        return self._info(files[0]) if files else None

    def delete(self, key: str) -> None:
        validate_key(key)
        api, bucket = self._connect()
        if self.config.options.get("keep_versions") or self.config.options.get("object_lock_mode"):
            self._call(lambda: bucket.hide_file(key), key)  # the versions stay (a locked one cannot go anyway)
            return
        versions = with_retries(lambda: self._call(lambda: list(bucket.list_file_versions(key)), key))
        for version in versions:
            try:
                if version.action == "start":
                    self._call(lambda v=version: api.session.cancel_large_file(v.id_), key)
                else:
                    self._call(lambda v=version: api.session.delete_file_version(v.id_, key), key)
            except ObjectNotFound:
                pass

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        _, bucket = self._connect()
        start: str | None = prefix or None
        while True:
            page = with_retries(lambda s=start: self._call(
                lambda: bucket.api.session.list_file_names(bucket.id_, s, 1000, prefix or None)))
            for entry in page["files"]:
                if entry.get("action", "upload") == "upload":
                    yield self._info(entry)
            start = page.get("nextFileName")
            if not start:
                return

    # -- helpers ----------------------------------------------------------------
    def _info(self, entry: dict[str, Any]) -> ObjectInfo:
        file_info = entry.get("fileInfo") or {}
        checksums = {}
        sha1 = entry.get("contentSha1") or "none"
        if sha1 != "none" and not sha1.startswith("unverified:"):
            checksums["sha1"] = sha1
        elif file_info.get("large_file_sha1"):
            checksums["sha1"] = file_info["large_file_sha1"]
        if file_info.get(SHA256_INFO):
            checksums["sha256"] = file_info[SHA256_INFO]
        stamp = entry.get("uploadTimestamp")
        return ObjectInfo(
            key=entry["fileName"],
            size=int(entry.get("contentLength") or 0),
            storage_class="",
            checksums=checksums,
            version_id=entry.get("fileId"),
            etag=checksums.get("sha1"),
            modified=datetime.fromtimestamp(stamp / 1000, UTC) if stamp is not None else None,
            metadata={k: v for k, v in file_info.items()
                      if k not in (SHA256_INFO, "large_file_sha1") and not k.startswith("b2-")},
        )




def _end(reader: HashingReader) -> None:
    """Make sure the source has no more bytes and matches its sha256."""
    reader.read(1)
    reader.check()


class _Download(io.RawIOBase):
    """A streaming download that checks length and (when B2 knows it) SHA-1 at the end."""

    def __init__(self, response: Any, size: int, sha1: str | None, key: str):
        self._response = response
        self._chunks = response.iter_content(CHUNK)
        self._buf = b""
        self._size, self._expected, self._key = size, sha1, key
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._got = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._done:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                self._finish()
            except (requests.RequestException, b2exc.B2Error, OSError) as exc:
                raise TransientError(f"B2 download of {self._key!r} broke: {type(exc).__name__}") from exc
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._sha1.update(self._buf[:n])
        self._got += n
        self._buf = self._buf[n:]
        return n

    def _finish(self) -> None:
        self._done = True
        if self._got != self._size:
            raise IntegrityError(f"B2 sent {self._got} of {self._size} bytes of {self._key!r}")
        if self._expected and self._sha1.hexdigest() != self._expected:
            raise IntegrityError(f"B2 sent bytes of {self._key!r} whose SHA-1 differs from the stored one")

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()
