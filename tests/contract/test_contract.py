"""The conformance suite every backend passes (like rclone's fstests).

Each test gets ``target`` (tests/contract/conftest.py): a ContractTarget whose backend sits on a fresh,
empty bucket. Capabilities a target lacks are declared in its ContractTarget, never skipped silently.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from providers.backends.base import (
    Backend,
    IntegrityError,
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    TransientError,
)
from tests.contract.target import ContractTarget

#: How long a backend may take to report a dead server (retries included) before the test fails.
TRANSIENT_DEADLINE = 30.0
#: How long a restarted server may take to accept a put again.
RECOVERY_DEADLINE = 30.0
DROPBOX_BLOCK = 4 * 1024 * 1024


# -- helpers ----------------------------------------------------------------------------------------
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dropbox_content_hash(data: bytes) -> bytes:
    """Dropbox's published algorithm: sha256 over the sha256 digests of 4 MiB blocks."""
    blocks = (data[i : i + DROPBOX_BLOCK] for i in range(0, len(data), DROPBOX_BLOCK))
    return hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blocks)).digest()


def crc32c(data: bytes) -> bytes | None:
    try:
        import google_crc32c
    except ImportError:  # pragma: no cover - installed with google-cloud-storage
        return None
    return google_crc32c.Checksum(data).digest()


def digests(data: bytes) -> dict[str, bytes | None]:
    return {
        "sha256": hashlib.sha256(data).digest(),
        "md5": hashlib.md5(data).digest(),  # noqa: S324 - the provider's own checksum, not security
        "sha1": hashlib.sha1(data).digest(),  # noqa: S324
        "content_hash": dropbox_content_hash(data),
        "crc32c": crc32c(data),
    }


def assert_checksums_agree(info: ObjectInfo, data: bytes) -> None:
    """Every reported checksum must be one we can recompute, and equal ours (hex or base64)."""
    assert info.checksums, f"{info.key}: the backend returned no provider-verified checksum"
    ours = digests(data)
    for algo, value in info.checksums.items():
        assert algo in ours, f"checksum algorithm {algo!r} unknown to the suite: cannot verify it"
        digest = ours[algo]
        if digest is None:
            continue
        accepted = {digest.hex(), base64.b64encode(digest).decode()}
        assert value in accepted or value.lower() == digest.hex(), (
            f"{algo} reported {value!r}, we computed {digest.hex()} for {info.key}"
        )


def read_all(backend: Backend, key: str) -> bytes:
    chunks = []
    with backend.open(key) as fh:
        while chunk := fh.read(1024 * 1024):
            chunks.append(chunk)
    return b"".join(chunks)


def put_bytes(backend: Backend, key: str, data: bytes, **kwargs: Any) -> ObjectInfo:
    return backend.put(key, io.BytesIO(data), len(data), sha256=sha256(data), **kwargs)


def multipart_size(backend: Backend) -> int:
    """More than one part, with a short last part."""
    part = backend.config.part_size
    return part + part // 2 + 17


def unique_prefix() -> str:
    return f"contract-{uuid.uuid4().hex[:10]}/"


class FlippingStream:
    """Hands out the data with one byte flipped, like a disk going bad under the upload."""

    def __init__(self, data: bytes, offset: int):
        self._buf = io.BytesIO(data)
        self._offset = offset

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        pos = self._buf.tell()
        chunk = self._buf.read(n)
        i = self._offset - pos
        if 0 <= i < len(chunk):
            chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
        return chunk


def within(seconds: float, fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run ``fn`` in a thread; fail the test when it has not finished after ``seconds``."""
    outcome: dict[str, Any] = {"result": None, "error": None}

    def run() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as exc:  # handed back to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds}s: the backend must give up in bounded time"
    return outcome["result"], outcome["error"]


def assert_round_trip(backend: Backend, key: str, data: bytes) -> None:
    info = put_bytes(backend, key, data, content_type="image/jpeg")
    assert info.key == key
    assert info.size == len(data)
    assert_checksums_agree(info, data)
    head = backend.head(key)
    assert head is not None, f"head({key!r}) is None right after put"
    assert head.key == key
    assert head.size == len(data)
    back = read_all(backend, key)
    assert len(back) == len(data)
    assert sha256(back) == sha256(data)
    assert back == data


# -- round trips ------------------------------------------------------------------------------------
def test_it_round_trips_an_empty_file(target: ContractTarget) -> None:
    assert_round_trip(target.backend, f"{unique_prefix()}empty.bin", b"")


def test_it_round_trips_a_small_file(target: ContractTarget) -> None:
    assert_round_trip(target.backend, f"{unique_prefix()}small.jpg", os.urandom(70_001))


def test_it_round_trips_a_multi_part_file(target: ContractTarget) -> None:
    size = multipart_size(target.backend)
    assert size > target.backend.config.part_size
    assert_round_trip(target.backend, f"{unique_prefix()}large.mov", os.urandom(size))


def test_it_round_trips_unicode_and_deep_paths(target: ContractTarget) -> None:
    prefix = f"{unique_prefix()}weddings/zoë-&-åsa/"
    key = f"{prefix}photo/2024 06/ceremony/first look/IMG 001 é.jpg"
    assert_round_trip(target.backend, key, os.urandom(4096))
    assert [o.key for o in target.backend.list(prefix)] == [key]


def test_it_replaces_content_on_overwrite(target: ContractTarget) -> None:
    key = f"{unique_prefix()}edit.jpg"
    put_bytes(target.backend, key, os.urandom(5000))
    newer = os.urandom(3000)
    info = put_bytes(target.backend, key, newer)
    assert info.size == len(newer)
    assert_checksums_agree(info, newer)
    assert target.backend.head(key).size == len(newer)
    assert read_all(target.backend, key) == newer


# -- delete and missing objects -------------------------------------------------------------------
def test_it_forgets_a_deleted_object(target: ContractTarget) -> None:
    key = f"{unique_prefix()}gone.jpg"
    put_bytes(target.backend, key, b"bye")
    target.backend.delete(key)
    assert target.backend.head(key) is None
    with pytest.raises(ObjectNotFound):
        read_all(target.backend, key)


def test_it_treats_deleting_a_missing_key_as_a_no_op(target: ContractTarget) -> None:
    target.backend.delete(f"{unique_prefix()}never-there.jpg")


def test_it_raises_object_not_found_when_opening_a_missing_key(target: ContractTarget) -> None:
    with pytest.raises(ObjectNotFound):
        read_all(target.backend, f"{unique_prefix()}never-there.jpg")


def test_it_returns_none_from_head_of_a_missing_key(target: ContractTarget) -> None:
    assert target.backend.head(f"{unique_prefix()}never-there.jpg") is None


# -- listing ----------------------------------------------------------------------------------------
def test_it_lists_exactly_the_keys_under_a_prefix(target: ContractTarget) -> None:
    backend = target.backend
    if getattr(backend, "page_size", None) is not None:
        backend.page_size = 10
    root = unique_prefix()
    album = f"{root}album/"
    inside = {f"{album}IMG_{i:03d}.jpg": os.urandom(i + 1) for i in range(22)}
    inside.update({f"{album}sub/deeper/IMG_{i}.jpg": os.urandom(7) for i in range(3)})
    outside = [f"{root}album2/IMG_000.jpg", f"{root}alb/IMG_000.jpg", f"{root}top.jpg"]
    for key, data in inside.items():
        put_bytes(backend, key, data)
    for key in outside:
        put_bytes(backend, key, b"outside")
    listed = list(backend.list(album))
    keys = [o.key for o in listed]
    assert len(keys) == len(set(keys)), "list() returned a key twice"
    assert set(keys) == set(inside)
    assert {o.key: o.size for o in listed} == {k: len(v) for k, v in inside.items()}
    assert {o.key for o in backend.list(root)} == set(inside) | set(outside)


def test_it_lists_nothing_under_an_unused_prefix(target: ContractTarget) -> None:
    assert list(target.backend.list(unique_prefix())) == []


# -- storage classes --------------------------------------------------------------------------------
def test_it_changes_the_storage_class(target: ContractTarget) -> None:
    if target.other_storage_class is None:
        pytest.skip(f"{target.name} declares no other storage class (other_storage_class=None)")
    backend = target.backend
    key = f"{unique_prefix()}archive.jpg"
    data = os.urandom(2048)
    put_bytes(backend, key, data)
    info = backend.change_storage_class(key, target.other_storage_class)
    assert info.key == key
    assert info.size == len(data)
    if target.class_change_persists:
        assert backend.head(key).storage_class == target.other_storage_class
    if target.other_storage_class not in backend.archive_classes:
        assert read_all(backend, key) == data


# -- integrity --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", ["small", "multi_part"])
def test_it_refuses_a_corrupted_source_and_commits_nothing(target: ContractTarget, size: str) -> None:
    backend = target.backend
    data = os.urandom(50_000 if size == "small" else multipart_size(backend))
    key = f"{unique_prefix()}corrupt-{size}.jpg"
    # Flip a byte in the last part, so a multi-part upload has parts in flight to abort.
    stream = FlippingStream(data, len(data) - 3)
    with pytest.raises(IntegrityError):
        backend.put(key, stream, len(data), sha256=sha256(data))
    assert backend.head(key) is None
    assert [o.key for o in backend.list(key.rsplit("/", 1)[0] + "/")] == []


def test_it_keeps_the_old_object_when_a_corrupted_overwrite_fails(target: ContractTarget) -> None:
    backend = target.backend
    key = f"{unique_prefix()}keep.jpg"
    old = os.urandom(4000)
    put_bytes(backend, key, old)
    new = os.urandom(5000)
    with pytest.raises(IntegrityError):
        backend.put(key, FlippingStream(new, 10), len(new), sha256=sha256(new))
    assert read_all(backend, key) == old


def test_it_refuses_a_source_shorter_than_declared(target: ContractTarget) -> None:
    backend = target.backend
    data = os.urandom(20_000)
    key = f"{unique_prefix()}short.jpg"
    with pytest.raises(IntegrityError):
        backend.put(key, io.BytesIO(data[:-100]), len(data), sha256=sha256(data))
    assert backend.head(key) is None


# -- permanent errors -------------------------------------------------------------------------------
def test_it_raises_permanent_error_for_bad_credentials(target: ContractTarget) -> None:
    if target.bad_credentials is None:
        why = target.notes.get("bad_credentials", "")
        pytest.skip(f"{target.name} checks no credentials (bad_credentials=None): {why}")
    backend = target.make_backend(credentials=target.bad_credentials)
    _, error = within(TRANSIENT_DEADLINE, lambda: put_bytes(backend, f"{unique_prefix()}x.jpg", b"x"))
    assert isinstance(error, PermanentError), f"expected PermanentError, got {error!r}"


def test_it_raises_permanent_error_naming_a_missing_bucket(target: ContractTarget) -> None:
    missing = f"wbmissing-{uuid.uuid4().hex[:12]}"
    backend = target.make_backend(bucket=missing)
    _, error = within(TRANSIENT_DEADLINE, lambda: put_bytes(backend, f"{unique_prefix()}x.jpg", b"x"))
    assert isinstance(error, PermanentError), f"expected PermanentError, got {error!r}"
    assert missing in str(error), f"the message should name the bucket {missing!r}: {error}"


@pytest.mark.parametrize("key", ["../x", "/abs", "a/../b"])
@pytest.mark.parametrize("operation", ["put", "open", "head", "delete"])
def test_it_rejects_keys_that_could_escape(target: ContractTarget, key: str, operation: str) -> None:
    backend = target.backend
    calls = {
        "put": lambda: put_bytes(backend, key, b"x"),
        "open": lambda: backend.open(key),
        "head": lambda: backend.head(key),
        "delete": lambda: backend.delete(key),
    }
    with pytest.raises(PermanentError):
        calls[operation]()


# -- health -----------------------------------------------------------------------------------------
def test_it_probes_ok_on_a_healthy_target(target: ContractTarget) -> None:
    probe = target.backend.probe()
    assert probe.ok, probe.error
    assert probe.latency_ms > 0


def test_it_reports_a_dead_server_as_transient_and_recovers(target: ContractTarget) -> None:
    if target.server is None:
        pytest.skip(f"{target.name} has no server to stop (server=None)")
    backend = target.backend
    key = f"{unique_prefix()}during-outage.jpg"
    try:
        target.server.stop()
        probe, error = within(TRANSIENT_DEADLINE, backend.probe)
        assert error is None, f"probe() raised instead of reporting: {error!r}"
        assert not probe.ok
        assert probe.error
        _, error = within(TRANSIENT_DEADLINE, lambda: put_bytes(backend, key, b"x"))
        assert isinstance(error, TransientError), f"expected TransientError, got {error!r}"
    finally:
        target.server.restart()
    if target.reset is not None:
        target.reset()
    data = os.urandom(1000)
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while True:
        try:
            info = put_bytes(backend, key, data)
            break
        except TransientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert_checksums_agree(info, data)
    assert read_all(backend, key) == data
