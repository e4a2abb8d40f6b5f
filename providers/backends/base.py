"""The one contract every storage backend implements.

Like rclone's ``fs.Fs`` and django-storages' ``Storage``: small, exact, the same for
every provider. Backends never see Django models: they are built from a plain
``BackendConfig`` (see ``providers.backends.backend_for``).
"""

from __future__ import annotations

import abc
import hashlib
import io
import posixpath
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, ClassVar, TypeVar

from .base_lifecycle import LifecycleRule

DEFAULT_PART_SIZE = 8 * 1024 * 1024
PROBE_PREFIX = ".wedbackup-probe/"


class ProviderError(Exception):
    """Base of the error vocabulary. ``permanent`` decides retry versus reroute."""

    permanent: bool = False

    def __init__(self, message: str, *, permanent: bool | None = None):
        super().__init__(message)
        if permanent is not None:
            self.permanent = permanent


class TransientError(ProviderError):
    """Throttling, 5xx, timeouts, connection resets: worth retrying."""

    permanent = False


class PermanentError(ProviderError):
    """Auth, missing bucket, quota, bad request: reroute and tell staff."""

    permanent = True


class ObjectNotFound(PermanentError):
    """The key does not exist."""


class NeedsRestore(PermanentError):
    """The object sits in an archive class and must be rehydrated before reading."""


class IntegrityError(ProviderError):
    """Checksums disagree. Never accepted; the upload may be retried from source."""

    permanent = False


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    storage_class: str | None = None
    checksums: dict[str, str] = field(default_factory=dict)
    version_id: str | None = None
    etag: str | None = None
    modified: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    ok: bool
    latency_ms: float
    error: str = ""


@dataclass(frozen=True)
class BackendConfig:
    """Everything a backend needs, decrypted, with no Django in sight."""

    name: str
    kind: str
    bucket: str = ""
    region: str = ""
    endpoint: str = ""
    credentials: dict[str, Any] = field(default_factory=dict)
    default_storage_class: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    part_size: int = DEFAULT_PART_SIZE


def validate_key(key: str) -> str:
    """Reject keys that could escape a prefix or confuse a provider."""
    if not key or key.startswith("/") or "\x00" in key or "\\" in key:
        raise PermanentError(f"invalid object key {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."):
        raise PermanentError(f"invalid object key {key!r}")
    if posixpath.normpath(key) != key.rstrip("/"):
        raise PermanentError(f"invalid object key {key!r}")
    return key


class HashedBuffer(io.BytesIO):
    """Bytes already in memory whose sha256 was computed when they were read (the engine reads a file once,
    checks it against the catalogue, and hands the same buffer to every target). ``HashingReader`` trusts
    ``sha256`` instead of hashing the bytes again: ``bytes`` are immutable, so the digest stays true."""

    def __init__(self, data: bytes, sha256: str | None = None):
        super().__init__(data)
        self._data = data
        self.size = len(data)
        self.sha256 = sha256 or hashlib.sha256(data).hexdigest()

    def read(self, n: int | None = -1) -> bytes:
        if self.tell() == 0 and (n is None or n < 0 or n >= self.size):  # the whole buffer: no copy
            self.seek(0, io.SEEK_END)
            return self._data
        return super().read(n)


class VerifyingStream(abc.ABC):
    """A stream that checks its own bytes: its read at the end (the one that returns ``b""``) raises
    ``IntegrityError`` unless the ``size`` bytes it handed out hash to ``sha256`` (the engine's one-read tee,
    ``backups.tee``). ``HashingReader`` trusts that instead of hashing the bytes again, and drives the end
    read itself in ``check()`` when a backend stopped at the last byte."""

    size: int
    sha256: str
    finished: bool = False  # set by the end read once it verified

    @abc.abstractmethod
    def read(self, n: int = -1) -> bytes: ...


class _KnownDigest:
    """Stands in for a hash object whose final digest is already known."""

    name = "sha256"

    def __init__(self, hexdigest: str):
        self._hex = hexdigest

    def update(self, data: bytes) -> None:
        pass

    def hexdigest(self) -> str:
        return self._hex

    def digest(self) -> bytes:
        return bytes.fromhex(self._hex)


class HashingReader:
    """A read-only stream wrapper that hashes what it hands out.

    It enforces the declared size and, at end of stream, the expected sha256, so a
    file that changed since ingest (or a corrupted source) raises ``IntegrityError``
    before any backend can report success. A ``HashedBuffer`` of the declared size
    brings its own sha256, so only the other ``algos`` are computed.
    """

    def __init__(self, stream: IO[bytes], size: int, sha256: str | None, algos: tuple[str, ...] = ()):
        self._stream = stream
        self.size = size
        self.expected_sha256 = sha256
        self.read_bytes = 0
        known = isinstance(stream, HashedBuffer) and stream.size == size and stream.tell() == 0
        # A verifying stream vouches for its own sha256 only when it is the one expected here.
        self._verifying = (isinstance(stream, VerifyingStream) and stream.size == size and not stream.finished
                           and bool(sha256) and stream.sha256 == sha256)
        known = known or self._verifying
        self.hashes: dict[str, Any] = {"sha256": _KnownDigest(stream.sha256) if known else hashlib.sha256()}
        for algo in algos:
            self.hashes.setdefault(algo, hashlib.new(algo))
        self.digest_known = known

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.read_bytes + 1
        data = self._stream.read(n)
        if data:
            self.read_bytes += len(data)
            if self.read_bytes > self.size:
                raise IntegrityError(f"source grew beyond the declared {self.size} bytes")
            for h in self.hashes.values():
                h.update(data)
        elif self.read_bytes != self.size:
            raise IntegrityError(f"source ended at {self.read_bytes} of {self.size} bytes")
        return data

    def read_exactly(self, n: int) -> bytes:
        """``n`` bytes, short only where the source ends (streams may return short reads);
        ``read_exactly(0)`` checks that the source has ended (it raises if the source grew)."""
        if n == 0:
            self.read(1)
            return b""
        chunks, got = [], 0
        while got < n:
            chunk = self.read(n - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def hexdigest(self, algo: str = "sha256") -> str:
        return self.hashes[algo].hexdigest()

    def check(self) -> None:
        """Call after the last byte: raise unless size and sha256 match."""
        if self.read_bytes != self.size:
            raise IntegrityError(f"read {self.read_bytes} of {self.size} bytes")
        if self._verifying and not self._stream.finished:
            self.read(1)  # the stream's end read: it raises unless the bytes it handed out were the expected ones
            if not self._stream.finished:
                raise IntegrityError("the source did not confirm its sha256 at its end")
        if self.expected_sha256 and self.hexdigest() != self.expected_sha256:
            raise IntegrityError("sha256 of the bytes sent differs from the expected sha256")


class TranslatedStream(io.RawIOBase):
    """An SDK's download body as a file object whose read errors are already the contract's errors."""

    def __init__(self, read: Callable[[int], bytes], errors: tuple[type[BaseException], ...],
                 translate: Callable[[BaseException], ProviderError], close: Callable[[], None] | None = None):
        self._read, self._errors, self._translate, self._close = read, errors, translate, close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._read(len(buffer))
        except self._errors as exc:
            raise self._translate(exc) from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed and self._close is not None:
            self._close()
        super().close()


T = TypeVar("T")


def with_retries(
    fn: Callable[[], T],
    *,
    attempts: int = 4,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    retry_on: tuple[type[BaseException], ...] = (TransientError,),
) -> T:
    """Call ``fn``, retrying transient failures with exponential backoff and full jitter."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except retry_on:
            if attempt == attempts:
                raise
            time.sleep(random.uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1))))
    raise AssertionError("unreachable")


class Backend(abc.ABC):
    """The contract. Subclasses set ``kind`` and ``storage_classes``."""

    kind: ClassVar[str]
    #: Provider-native class names, the first being the default ("" when the provider has none).
    storage_classes: ClassVar[tuple[str, ...]] = ("",)
    #: Classes whose objects must be rehydrated before they can be read.
    archive_classes: ClassVar[frozenset[str]] = frozenset()
    #: Which optional operations the backend supports (declared, never silently skipped).
    can_change_class: ClassVar[bool] = False
    can_restore: ClassVar[bool] = False
    #: Options a Provider row may carry for this backend; anything else is rejected loudly.
    known_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: BackendConfig):
        unknown = set(config.options) - self.known_options
        if unknown:
            raise PermanentError(f"{config.name}: unknown option(s) {', '.join(sorted(unknown))}")
        self.config = config

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config.name}>"

    #: Object lock (retention that not even our own credentials can shorten) and reading a given version:
    #: declared here; whether a provider's bucket has lock switched on is its ``object_lock_mode`` option.
    can_lock: ClassVar[bool] = False
    reads_versions: ClassVar[bool] = False
    #: Keys differing only in case are one object here (Dropbox, Box).
    case_insensitive: ClassVar[bool] = False

    def locks(self) -> bool:
        """Does this provider write new objects locked (declared capability and the bucket's lock option)?"""
        return self.can_lock and bool(self.config.options.get("object_lock_mode"))

    def open_version(self, key: str, version_id: str) -> IO[bytes]:
        """Read one given version of ``key`` (``reads_versions``), whatever was written over it since."""
        raise PermanentError(f"{self.kind} cannot read a given version of an object")

    def retention_extend(self, key: str, version_id: str, until: datetime) -> None:
        """Keep a locked version locked until ``until`` (never shortens a lock). ``can_lock`` backends only."""
        raise PermanentError(f"{self.kind} cannot lock objects")

    #: The API family the endpoint speaks: two kinds on one endpoint (aws_s3 and wasabi against one S3 server)
    #: reach the same objects.
    protocol: ClassVar[str] = ""

    def location(self) -> str:
        """The identity of the physical place this backend writes to (endpoint + bucket + root). Two providers
        with one location are one copy, not two: the guarded delete refuses to count one as the other's
        survivor, and a second provider with a location already in use is refused."""
        return self.location_of(self.config)

    @classmethod
    def location_of(cls, config: BackendConfig) -> str:
        """``location()`` from the configuration alone (no credentials needed, no request made)."""
        if not config.bucket.strip():
            return ""  # unknown (e.g. a B2 key restricted to a bucket it names itself)
        endpoint = config.endpoint.strip().rstrip("/").lower()
        family = (cls.protocol or cls.kind) if endpoint else cls.kind
        root = str(config.options.get("root", "") or config.options.get("root_folder_id", "")).strip("/")
        return f"{family}|{endpoint}|{config.bucket.strip().strip('/')}|{root}"

    # -- the operations -------------------------------------------------
    @abc.abstractmethod
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
        """Stream ``size`` bytes to ``key``; return only once the provider's checksum matched."""

    @abc.abstractmethod
    def open(self, key: str) -> IO[bytes]:
        """A readable binary stream of the object. ``ObjectNotFound`` / ``NeedsRestore``."""

    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Metadata of the object, or None when it does not exist."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object (all versions where the provider keeps them). Missing is a no-op."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Lazily page through objects under ``prefix``."""

    def change_storage_class(self, key: str, storage_class: str) -> ObjectInfo:
        raise PermanentError(f"{self.kind} cannot change storage classes")

    def request_restore(self, key: str, *, days: int = 2) -> None:
        raise PermanentError(f"{self.kind} has no archive restore")

    #: Bucket lifecycle rules (the provider moves objects to colder classes by age itself): ``base_lifecycle``.
    lifecycle_rules: ClassVar[bool] = False

    def lifecycle_get(self) -> list[LifecycleRule]:
        raise PermanentError(f"{self.kind}: lifecycle rules are not supported here")

    def lifecycle_put(self, rules: list[LifecycleRule]) -> bool:
        raise PermanentError(f"{self.kind}: lifecycle rules are not supported here")

    # -- shared helpers ---------------------------------------------------
    def storage_class_for(self, storage_class: str | None) -> str:
        """Validate a class name against this backend's list; None means the default."""
        cls = storage_class or self.config.default_storage_class or self.storage_classes[0]
        if cls not in self.storage_classes:
            raise PermanentError(f"{self.kind} has no storage class {cls!r}")
        return cls

    def probe(self) -> Probe:
        """Canary write, read back, compare, delete."""
        started = time.monotonic()
        key = f"{PROBE_PREFIX}{int(time.time() * 1000)}-{random.randrange(1 << 30)}"
        payload = f"wedbackup probe {key}".encode()
        try:
            self.put(key, io.BytesIO(payload), len(payload), sha256=hashlib.sha256(payload).hexdigest(),
                     content_type="text/plain")
            with self.open(key) as fh:
                if fh.read() != payload:
                    raise IntegrityError("probe read back different bytes")
            self.delete(key)
        except ProviderError as exc:
            return Probe(False, (time.monotonic() - started) * 1000, str(exc))
        except Exception as exc:  # an SDK error we failed to classify is still a failed probe
            return Probe(False, (time.monotonic() - started) * 1000, f"{type(exc).__name__}: {exc}")
        return Probe(True, (time.monotonic() - started) * 1000)
