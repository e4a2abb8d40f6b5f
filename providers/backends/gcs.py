"""Google Cloud Storage with google-cloud-storage; gcp-storage-emulator in tests."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

import google_crc32c
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from google.cloud.storage import exceptions as storage_exceptions
from google.oauth2 import service_account

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
from .gcs_lifecycle import GCSLifecycle
from .gcs_resumable import TRANSIENT_STATUS, ResumableSession, b64, chunk_size_for

T = TypeVar("T")
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
#: (connect, read) seconds: short, so an outage is noticed fast; the SDK's own retries are off (retry=None).
TIMEOUT = (5, 30)
NO_PROJECT = "<none>"


class GCSBackend(GCSLifecycle, Backend):
    kind = "gcs"
    storage_classes = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
    archive_classes = frozenset()  # GCS serves ARCHIVE objects immediately: nothing to rehydrate
    can_change_class = True
    can_restore = False
    known_options = frozenset({"project", "kms_key_name", "page_size"})

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        if not config.bucket:
            raise PermanentError(f"{config.name}: no bucket configured")
        self.page_size = int(config.options.get("page_size", 1000))
        self.kms_key_name = config.options.get("kms_key_name") or None
        self._local = threading.local()
        self._versioning: bool | None = None

    # -- clients ------------------------------------------------------------
    def _credentials(self) -> tuple[Credentials, str]:
        creds, project = self.config.credentials or {}, self.config.options.get("project")
        if creds.get("anonymous"):
            if not self.config.endpoint:
                raise PermanentError(f"{self.config.name}: anonymous credentials need an endpoint (an emulator)")
            return AnonymousCredentials(), project or NO_PROJECT
        info = creds.get("service_account_info")
        try:
            if isinstance(info, str):
                info = json.loads(info)
            if not isinstance(info, dict):
                raise PermanentError(f"{self.config.name}: credentials need service_account_info (a service "
                                     "account JSON key), or anonymous with an emulator endpoint")
            sa = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
        except (ValueError, KeyError, TypeError) as exc:
            # The exception text may quote the key: name only its type.
            raise PermanentError(f"{self.config.name}: the service account key is not valid "
                                 f"({type(exc).__name__})") from None
        return sa, project or info.get("project_id") or NO_PROJECT

    def _bucket(self) -> storage.Bucket:
        bucket = getattr(self._local, "bucket", None)
        if bucket is None:
            credentials, project = self._credentials()
            options = {"api_endpoint": self.config.endpoint.rstrip("/")} if self.config.endpoint else None
            client = storage.Client(project=project, credentials=credentials, client_options=options)
            bucket = self._local.bucket = client.bucket(self.config.bucket)
            self._local.http = AuthorizedSession(credentials)
        return bucket

    def _http(self) -> requests.Session:
        self._bucket()
        return self._local.http

    def _blob(self, key: str) -> storage.Blob:
        return self._bucket().blob(key, kms_key_name=self.kms_key_name)

    # -- error vocabulary ---------------------------------------------------
    def _translate(self, exc: BaseException, key: str | None = None) -> ProviderError:
        name, where = self.config.name, f"bucket {self.config.bucket!r}"
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, storage_exceptions.DataCorruption):
            return IntegrityError(f"{name}: Google Cloud Storage reports a different checksum for {key!r}")
        if isinstance(exc, auth_exceptions.RefreshError):
            return PermanentError(f"{name}: Google refused the service account credentials for {where}: "
                                  "check the key is current and not disabled")
        # Connection errors quote URLs: name only the type.
        if isinstance(exc, requests.ConnectionError | requests.Timeout | auth_exceptions.TransportError
                      | ConnectionError | TimeoutError):
            return TransientError(f"{name}: cannot reach Google Cloud Storage ({type(exc).__name__})")
        if isinstance(exc, storage_exceptions.InvalidResponse) and exc.response is not None:
            exc = api_exceptions.from_http_response(exc.response)
        if isinstance(exc, api_exceptions.GoogleAPICallError):
            status, message = exc.code or 0, (exc.message or "")
            if status in (401, 403):
                return PermanentError(f"{name}: Google Cloud Storage refused access to {where} ({status}): "
                                      "check the service account and its roles on the bucket")
            if status == 404:
                if "bucket does not exist" in message:
                    return self._bucket_missing()
                return ObjectNotFound(f"{name}: no object {key!r} in {where}")
            if status == 400 and ("md5" in message.lower() or "crc32c" in message.lower()):
                return IntegrityError(f"{name}: Google Cloud Storage computed a different checksum for {key!r}")
            if status in TRANSIENT_STATUS or status >= 500:
                return TransientError(f"{name}: Google Cloud Storage answered {status}")
            return PermanentError(f"{name}: Google Cloud Storage refused the request for {key!r} in {where}: "
                                  f"{status} {type(exc).__name__}")
        if isinstance(exc, api_exceptions.GoogleAPIError):
            return TransientError(f"{name}: Google Cloud Storage error ({type(exc).__name__})")
        if isinstance(exc, auth_exceptions.GoogleAuthError):  # e.g. a 401 to anonymous credentials
            return PermanentError(f"{name}: cannot authenticate to Google Cloud Storage for {where} "
                                  f"({type(exc).__name__}): check the provider's credentials")
        raise exc

    def _bucket_missing(self) -> PermanentError:
        return PermanentError(f"{self.config.name}: bucket {self.config.bucket!r} does not exist: "
                              "create it or fix the provider settings")

    def _not_found(self, exc: ObjectNotFound) -> ProviderError:
        """A 404 that did not say whether the object or the bucket is missing (the emulator never says): ask."""
        if "No such object" in str(exc.__cause__ or ""):
            return exc
        try:
            exists = self._bucket().exists(retry=None, timeout=TIMEOUT)
        except api_exceptions.Forbidden:
            return exc  # allowed objects but not bucket metadata: the bucket is there
        except Exception as check:  # classified like any other failure
            return self._translate(check)
        return exc if exists else self._bucket_missing()

    def _call(self, fn: Callable[[], T], key: str | None = None, *, attempts: int = 3) -> T:
        def once() -> T:
            try:
                return fn()
            except (api_exceptions.GoogleAPIError, storage_exceptions.InvalidResponse, requests.RequestException,
                    auth_exceptions.GoogleAuthError, ConnectionError, TimeoutError) as exc:
                error = self._translate(exc, key)
                if isinstance(error, ObjectNotFound):
                    error.__cause__ = exc
                    error = self._not_found(error)
                raise error from exc

        return with_retries(once, attempts=attempts, base_delay=0.2, max_delay=1.0)

    # -- operations -----------------------------------------------------------
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
        validate_key(key)
        blob = self._blob(key)
        blob.storage_class = self.storage_class_for(storage_class)
        if metadata:
            blob.metadata = metadata
        reader = HashingReader(stream, size, sha256, algos=("md5",))
        crc = google_crc32c.Checksum()
        try:
            if size <= self.config.part_size:
                data = reader.read_exactly(size)
                reader.read_exactly(0)
                reader.check()
                crc.update(data)
                blob.md5_hash, blob.crc32c = b64(reader.hashes["md5"].digest()), b64(crc.digest())
                # The server recomputes both and refuses the upload when either differs.
                self._call(lambda: blob.upload_from_string(data, content_type=content_type, checksum=None,
                                                           retry=None, timeout=TIMEOUT), key)
            else:
                generation = self._put_resumable(blob, reader, crc, size, content_type)
                blob = self._bucket().blob(key, generation=generation)
                self._call(lambda: blob.reload(retry=None, timeout=TIMEOUT), key)
        except ObjectNotFound as exc:
            # The bucket exists (else _call said so): a 404 mid-upload means the upload session expired.
            raise TransientError(f"{self.config.name}: GCS lost the upload of {key!r} (404); retry") from exc
        info = _info(blob)
        expected = {"md5": reader.hexdigest("md5"), "crc32c": crc.digest().hex()}
        # crc32c is on every GCS object; md5 is missing on composite ones, so it is compared when reported.
        reported = info.checksums
        if (info.size != size or reported.get("crc32c") != expected["crc32c"]
                or reported.get("md5", expected["md5"]) != expected["md5"]):
            self._call(lambda: blob.delete(if_generation_match=blob.generation, retry=None, timeout=TIMEOUT), key)
            raise IntegrityError(f"{self.config.name}: GCS reports a different size or checksum for {key!r}; deleted")
        return info

    def _put_resumable(self, blob: storage.Blob, reader: HashingReader, crc: Any, size: int,
                       content_type: str) -> int:
        """Stream in part-sized chunks; refuse before the final request (the commit) if the source is wrong."""
        url = self._call(lambda: blob.create_resumable_upload_session(
            content_type=content_type, size=size, timeout=TIMEOUT, retry=None), blob.name)
        session = ResumableSession(self._http(), url, size, timeout=TIMEOUT)
        chunk = chunk_size_for(self.config.part_size)
        try:
            while True:
                data = reader.read_exactly(min(chunk, size - reader.read_bytes))
                crc.update(data)
                final = reader.read_bytes == size
                if final:
                    reader.read_exactly(0)
                    reader.check()
                resource = self._call(lambda d=data, f=final: session.send(
                    d, final=f, hashes=lambda: {"md5": reader.hashes["md5"].digest(), "crc32c": crc.digest()}),
                    blob.name, attempts=1)
                if final:
                    return int(resource["generation"])
        except BaseException:
            session.cancel()
            raise

    def open(self, key: str) -> IO[bytes]:
        validate_key(key)
        found = self._bucket().blob(key)
        self._call(lambda: found.reload(retry=None, timeout=TIMEOUT), key)
        # Read through a blob built from bucket + name + generation, never through the reloaded mediaLink: the
        # SDK then builds the download URL itself, percent-encoding the name (the emulator's mediaLink is not
        # encoded, so '?', '#', '%', '+' or spaces would name another object); the generation pins what we saw.
        blob = self._bucket().blob(key, generation=found.generation)
        return io.BufferedReader(_Download(self, blob, int(found.size or 0)),
                                 buffer_size=min(self.config.part_size, 8 * 1024 * 1024))

    def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        blob = self._bucket().blob(key)
        try:
            self._call(lambda: blob.reload(retry=None, timeout=TIMEOUT), key)
        except ObjectNotFound:
            return None
        return _info(blob)

    def delete(self, key: str) -> None:
        """The live object, and its old generations when the bucket keeps them (object versioning)."""
        validate_key(key)
        bucket = self._bucket()
        with contextlib.suppress(ObjectNotFound):
            self._call(lambda: bucket.blob(key).delete(retry=None, timeout=TIMEOUT), key)
        if not self._versioned():
            return  # listing is a billed class A operation: only pay for it when there can be old generations
        old = self._call(lambda: [b for b in bucket.list_blobs(prefix=key, versions=True, retry=None,
                                                               timeout=TIMEOUT) if b.name == key], key)
        for blob in old:
            with contextlib.suppress(ObjectNotFound):
                self._call(lambda b=blob: b.delete(retry=None, timeout=TIMEOUT), key)

    def _versioned(self) -> bool:
        if self._versioning is None:
            bucket = self._bucket()
            try:
                self._call(lambda: bucket.reload(retry=None, timeout=TIMEOUT))
            except PermanentError:
                return False  # no right to read bucket metadata: versioning is the owner's business
            self._versioning = bool(bucket.versioning_enabled)
        return self._versioning

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        bucket, token = self._bucket(), None

        def page() -> tuple[list[storage.Blob], str | None]:
            blobs = bucket.list_blobs(prefix=prefix or None, page_size=self.page_size, page_token=token,
                                      retry=None, timeout=TIMEOUT)
            return list(next(blobs.pages)), blobs.next_page_token

        while True:
            try:
                items, token = self._call(page)
            except ObjectNotFound:  # the bucket exists (else _call said so): nothing under the prefix
                return
            yield from (_info(b) for b in items)
            if not token:
                return

    def change_storage_class(self, key: str, storage_class: str) -> ObjectInfo:
        """A rewrite in place. Reload first: the rewrite body carries the whole resource, so content type and
        metadata survive, and ``sourceGeneration`` pins the object we looked at."""
        validate_key(key)
        cls = self.storage_class_for(storage_class)
        blob = self._blob(key)
        self._call(lambda: blob.reload(retry=None, timeout=TIMEOUT), key)
        if self.kms_key_name:
            blob.kms_key_name = self.kms_key_name  # reload set the versioned key name, which a rewrite refuses
        if blob.storage_class != cls:
            self._call(lambda: blob.update_storage_class(cls, retry=None, timeout=TIMEOUT), key, attempts=1)
        return _info(blob)


class _Download(io.RawIOBase):
    """Ranged reads of one generation, each SDK error already classified."""

    def __init__(self, backend: GCSBackend, blob: storage.Blob, size: int):
        self._backend, self._blob = backend, blob
        self._size, self._pos = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        start = self._pos
        data = self._backend._call(lambda: self._blob.download_as_bytes(
            start=start, end=start + n - 1, checksum=None, raw_download=True, retry=None, timeout=TIMEOUT),
            self._blob.name)
        if not data:
            raise TransientError(f"{self._backend.config.name}: GCS returned no bytes at {start} of {self._size}")
        data = data[:n]
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)




def _hex(value: str | None) -> str | None:
    return base64.b64decode(value).hex() if value else None


def _info(blob: storage.Blob) -> ObjectInfo:
    checksums = {algo: v for algo, v in (("md5", _hex(blob.md5_hash)), ("crc32c", _hex(blob.crc32c))) if v}
    return ObjectInfo(
        key=blob.name,
        size=int(blob.size or 0),
        storage_class=blob.storage_class,
        checksums=checksums,
        version_id=str(blob.generation) if blob.generation else None,
        etag=blob.etag,
        modified=blob.updated,
        metadata=dict(blob.metadata or {}),
    )
