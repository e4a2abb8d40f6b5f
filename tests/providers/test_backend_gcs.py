"""What the contract suite cannot express for GCS: declared hashes, the resumable protocol, the class rewrite.

A small recording proxy sits between the real SDK and the real emulator: it records each request and, when a
test asks, corrupts a body in transit or answers for the server. Nothing inside the SDK is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import google_crc32c
import pytest
from google.api_core import exceptions as api_exceptions
from google.cloud import storage

from providers.backends import backend_from_config
from providers.backends.base import IntegrityError, ObjectNotFound, PermanentError, TransientError
from providers.backends.gcs import GCSBackend
from providers.localservers.gcs_emulator import GCSEmulatorServer, gcs_client
from tests.fixtures.gcs import GCS_PART_SIZE, gcs_config

HOP_HEADERS = {"content-length", "connection", "transfer-encoding", "keep-alive"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)


class RecordingProxy:
    """Forwards to the emulator and records. ``tamper`` may return a replacement body; ``answer`` short-circuits
    with that status; ``/token`` plays Google's OAuth token endpoint with ``token_reply``."""

    def __init__(self, upstream: str):
        self.upstream = urllib.parse.urlparse(upstream)
        self.seen: list[Seen] = []
        self.tamper: Callable[[Seen], bytes | None] | None = None
        self.answer: int | None = None
        self.token_reply: tuple[int, dict[str, Any]] = (200, {"access_token": "ya29.test", "expires_in": 3600,
                                                             "token_type": "Bearer"})
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        seen = Seen(h.command, h.path, {k.lower(): v for k, v in h.headers.items()},
                    h.rfile.read(length) if length else b"")
        self.seen.append(seen)
        if seen.path.startswith("/token"):
            status, payload = self.token_reply
            return _reply(h, status, [("Content-Type", "application/json")], json.dumps(payload).encode())
        if self.answer is not None:
            error = {"error": {"code": self.answer, "message": "the proxy answered for the server"}}
            return _reply(h, self.answer, [("Content-Type", "application/json")], json.dumps(error).encode())
        body = (self.tamper(seen) if self.tamper else None) or seen.body
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_HEADERS}
            conn.request(seen.method, seen.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        _reply(h, resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_HEADERS], data)

    def uploads(self) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith("/upload/")]


def _reply(h: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
    h.send_response(status)
    for k, v in headers:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


@pytest.fixture
def proxy(gcs_emulator: GCSEmulatorServer) -> Iterator[RecordingProxy]:
    p = RecordingProxy(str(gcs_emulator.extra["endpoint"]))
    yield p
    p.close()


@pytest.fixture
def via_proxy(gcs_emulator: GCSEmulatorServer, gcs_bucket: str, proxy: RecordingProxy) -> GCSBackend:
    return backend_from_config(gcs_config(gcs_emulator, bucket=gcs_bucket, endpoint=proxy.url))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(backend: GCSBackend, key: str, data: bytes, **kwargs: Any):
    return backend.put(key, io.BytesIO(data), len(data), sha256=sha256(data), **kwargs)


def flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


def large(backend: GCSBackend) -> bytes:
    """Three chunks, the last one short."""
    return os.urandom(2 * backend.config.part_size + 1234)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


# -- declared checksums ---------------------------------------------------------------------------------
def test_the_emulator_rejects_a_wrong_declared_md5(gcs_emulator: GCSEmulatorServer, gcs_bucket: str) -> None:
    """The property the integrity tests below rely on."""
    blob = gcs_client(gcs_emulator).bucket(gcs_bucket).blob("wrong-md5.bin")
    blob.md5_hash = b64(hashlib.md5(b"something else").digest())  # noqa: S324 - GCS's own checksum
    with pytest.raises(api_exceptions.BadRequest, match="MD5"):
        blob.upload_from_string(b"payload", checksum=None, retry=None)
    assert gcs_client(gcs_emulator).bucket(gcs_bucket).get_blob("wrong-md5.bin") is None


def test_it_declares_md5_and_crc32c_on_a_single_request_upload(via_proxy: GCSBackend, proxy: RecordingProxy) -> None:
    data = os.urandom(10_000)
    info = put(via_proxy, "small.jpg", data)
    [upload] = proxy.uploads()
    assert upload.query["uploadType"] == ["multipart"]
    meta = json.loads(upload.body.split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0])
    assert meta["md5Hash"] == b64(hashlib.md5(data).digest())  # noqa: S324
    assert meta["crc32c"] == b64(google_crc32c.Checksum(data).digest())
    assert info.checksums == {"md5": hashlib.md5(data).hexdigest(),  # noqa: S324
                              "crc32c": google_crc32c.Checksum(data).digest().hex()}


def test_the_server_refusing_bytes_corrupted_in_transit_is_an_integrity_error(
    via_proxy: GCSBackend, proxy: RecordingProxy,
) -> None:
    def corrupt_last_content_byte(seen: Seen) -> bytes | None:
        if seen.query.get("uploadType") == ["multipart"]:
            return flip(seen.body, seen.body.rindex(b"\r\n--") - 1)
        return None

    proxy.tamper = corrupt_last_content_byte
    with pytest.raises(IntegrityError):
        put(via_proxy, "transit.jpg", os.urandom(20_000))
    proxy.tamper = None
    assert via_proxy.head("transit.jpg") is None


# -- the resumable protocol -----------------------------------------------------------------------------
def test_a_large_upload_goes_in_256k_multiple_chunks_and_declares_both_hashes_only_on_the_last(
    via_proxy: GCSBackend, proxy: RecordingProxy,
) -> None:
    data = large(via_proxy)
    info = put(via_proxy, "big.mov", data, storage_class="COLDLINE", metadata={"wedding": "zoe-asa"})
    initiate, *chunks = proxy.uploads()
    assert initiate.method == "POST" and initiate.query["uploadType"] == ["resumable"]
    assert json.loads(initiate.body)["storageClass"] == "COLDLINE"
    assert [c.method for c in chunks] == ["PUT"] * 3
    for chunk in chunks[:-1]:
        assert chunk.headers["content-range"].endswith("/*")
        assert len(chunk.body) % (256 * 1024) == 0
        assert "x-goog-hash" not in chunk.headers
    last = chunks[-1]
    assert last.headers["content-range"] == f"bytes {2 * GCS_PART_SIZE}-{len(data) - 1}/{len(data)}"
    declared = dict(part.split("=", 1) for part in last.headers["x-goog-hash"].split(","))
    assert declared == {"md5": b64(hashlib.md5(data).digest()),  # noqa: S324
                        "crc32c": b64(google_crc32c.Checksum(data).digest())}
    assert info.size == len(data) and info.storage_class == "COLDLINE"
    assert via_proxy.head("big.mov").metadata == {"wedding": "zoe-asa"}


def test_a_corrupted_source_cancels_the_session_before_the_final_chunk(
    via_proxy: GCSBackend, proxy: RecordingProxy,
) -> None:
    data = large(via_proxy)
    with pytest.raises(IntegrityError):
        via_proxy.put("bad.mov", io.BytesIO(flip(data, len(data) - 5)), len(data), sha256=sha256(data))
    initiate, *rest = proxy.uploads()
    sent = [s for s in rest if s.method == "PUT"]
    assert len(sent) == 2, "only the two full chunks may leave before the source is checked"
    assert all(s.headers["content-range"].endswith("/*") for s in sent)
    [cancel] = [s for s in rest if s.method == "DELETE"]
    assert cancel.query["upload_id"] == sent[0].query["upload_id"]
    assert via_proxy.head("bad.mov") is None


def test_bytes_corrupted_in_a_resumable_chunk_are_deleted_and_refused(
    via_proxy: GCSBackend, proxy: RecordingProxy,
) -> None:
    """Real GCS refuses the final request (its X-Goog-Hash disagrees); the emulator ignores that header and
    commits, so this also proves our own check of the checksums the server reports."""
    chunks = []

    def corrupt_second_chunk(seen: Seen) -> bytes | None:
        if seen.method == "PUT" and "upload_id" in seen.query:
            chunks.append(seen)
            if len(chunks) == 2:
                return flip(seen.body, 7)
        return None

    proxy.tamper = corrupt_second_chunk
    with pytest.raises(IntegrityError):
        put(via_proxy, "bitrot.mov", large(via_proxy))
    proxy.tamper = None
    assert via_proxy.head("bitrot.mov") is None


# -- storage classes ------------------------------------------------------------------------------------
def test_the_class_change_rewrite_carries_the_class_and_keeps_the_object(
    via_proxy: GCSBackend, proxy: RecordingProxy,
) -> None:
    """The emulator answers a rewrite but keeps the old class, so the request itself is the evidence."""
    put(via_proxy, "cold.jpg", b"cold feet", content_type="image/jpeg", metadata={"k": "v"})
    generation = via_proxy.head("cold.jpg").version_id
    proxy.seen.clear()
    via_proxy.change_storage_class("cold.jpg", "COLDLINE")
    [rewrite] = [s for s in proxy.seen if "/rewriteTo/" in s.path]
    body = json.loads(rewrite.body)
    assert body["storageClass"] == "COLDLINE"
    assert body["contentType"] == "image/jpeg" and body["metadata"] == {"k": "v"}
    assert rewrite.query["sourceGeneration"] == [generation]
    assert via_proxy.open("cold.jpg").read() == b"cold feet"


def test_it_refuses_an_unknown_storage_class(via_proxy: GCSBackend) -> None:
    with pytest.raises(PermanentError, match="GLACIER"):
        put(via_proxy, "x.jpg", b"x", storage_class="GLACIER")


def test_archive_objects_read_without_a_restore(gcs_target) -> None:
    backend = gcs_target.backend
    assert backend.archive_classes == frozenset() and not backend.can_restore
    info = put(backend, "archived.jpg", b"old photo", storage_class="ARCHIVE")
    assert info.storage_class == "ARCHIVE"
    assert backend.open("archived.jpg").read() == b"old photo"


# -- errors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "error"), [(401, PermanentError), (403, PermanentError),
                                               (429, TransientError), (503, TransientError)])
@pytest.mark.parametrize("operation", ["put", "head", "open", "list"])
def test_it_classifies_http_statuses(via_proxy: GCSBackend, proxy: RecordingProxy, status: int,
                                     error: type, operation: str) -> None:
    proxy.answer = status
    calls = {
        "put": lambda: put(via_proxy, "x.jpg", b"x"),
        "head": lambda: via_proxy.head("x.jpg"),
        "open": lambda: via_proxy.open("x.jpg"),
        "list": lambda: list(via_proxy.list("")),
    }
    started = time.monotonic()
    with pytest.raises(error) as caught:
        calls[operation]()
    assert time.monotonic() - started < 10
    assert not isinstance(caught.value, ObjectNotFound)
    if status in (401, 403):
        assert via_proxy.config.bucket in str(caught.value)


@pytest.mark.parametrize("operation", ["head", "open", "list", "delete", "change_storage_class"])
def test_a_missing_bucket_is_a_permanent_error_naming_it(gcs_emulator: GCSEmulatorServer, operation: str) -> None:
    backend = backend_from_config(gcs_config(gcs_emulator, bucket="wb-not-created"))
    calls = {
        "head": lambda: backend.head("x.jpg"),
        "open": lambda: backend.open("x.jpg"),
        "list": lambda: list(backend.list("a/")),
        "delete": lambda: backend.delete("x.jpg"),
        "change_storage_class": lambda: backend.change_storage_class("x.jpg", "NEARLINE"),
    }
    with pytest.raises(PermanentError, match="wb-not-created") as caught:
        calls[operation]()
    assert not isinstance(caught.value, ObjectNotFound)


def _service_account(token_uri: str) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "wedbackup-test", "private_key_id": "k1", "private_key": pem,
            "client_email": "backup@wedbackup-test.iam.gserviceaccount.com", "client_id": "1",
            "token_uri": token_uri}


def test_a_service_account_token_is_sent_with_every_request(
    gcs_emulator: GCSEmulatorServer, gcs_bucket: str, proxy: RecordingProxy,
) -> None:
    creds = {"service_account_info": _service_account(f"{proxy.url}/token")}
    backend = backend_from_config(gcs_config(gcs_emulator, bucket=gcs_bucket, endpoint=proxy.url,
                                             credentials=creds, options={}))
    put(backend, "sa.jpg", b"signed in")
    put(backend, "sa-big.mov", large(backend))
    storage_calls = [s for s in proxy.seen if not s.path.startswith("/token")]
    assert storage_calls and all(s.headers.get("authorization") == "Bearer ya29.test" for s in storage_calls)


def test_a_refused_service_account_is_a_permanent_error(
    gcs_emulator: GCSEmulatorServer, gcs_bucket: str, proxy: RecordingProxy,
) -> None:
    info = _service_account(f"{proxy.url}/token")
    proxy.token_reply = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    backend = backend_from_config(gcs_config(gcs_emulator, bucket=gcs_bucket, endpoint=proxy.url,
                                             credentials={"service_account_info": info}, options={}))
    with pytest.raises(PermanentError, match="service account") as caught:
        put(backend, "x.jpg", b"x")
    assert "PRIVATE KEY" not in str(caught.value)


@pytest.mark.parametrize("overrides", [
    {"credentials": {}},
    {"credentials": {"service_account_info": {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY"}}},
    {"credentials": {"anonymous": True}, "endpoint": ""},
])
def test_it_refuses_unusable_credentials(gcs_emulator: GCSEmulatorServer, overrides: dict[str, Any]) -> None:
    backend = backend_from_config(gcs_config(gcs_emulator, bucket="wb-any", **overrides))
    with pytest.raises(PermanentError) as caught:
        backend.head("x.jpg")
    assert "BEGIN PRIVATE KEY" not in str(caught.value)


def test_it_rejects_unknown_options(gcs_emulator: GCSEmulatorServer) -> None:
    with pytest.raises(PermanentError, match="storage_class_override"):
        backend_from_config(gcs_config(gcs_emulator, bucket="wb-any", options={"storage_class_override": "x"}))


def test_list_pages_lazily(gcs_target) -> None:
    backend = gcs_target.backend
    for i in range(3):
        put(backend, f"p/{i}.jpg", b"x")
    backend.page_size = 2
    pages = backend.list("p/")
    assert next(pages).key == "p/0.jpg"
    assert sorted(o.key for o in [*pages]) == ["p/1.jpg", "p/2.jpg"]


def test_the_sdk_client_is_one_per_thread(gcs_target) -> None:
    backend = gcs_target.backend
    buckets: list[storage.Bucket] = []
    threads = [threading.Thread(target=lambda: buckets.append(backend._bucket())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert buckets[0].client is not buckets[1].client
    assert backend._bucket() is backend._bucket()


# -- hostile names -----------------------------------------------------------------------------------------
HOSTILE = "w/a?b#c/IMG 001 + 50% ë.jpg"


def test_the_emulator_hands_out_an_unencoded_media_link(gcs_target) -> None:
    """The emulator difference the read path must not depend on: real GCS percent-encodes the name in mediaLink."""
    put(gcs_target.backend, HOSTILE, b"x")
    blob = gcs_target.backend._bucket().blob(HOSTILE)
    blob.reload(retry=None)
    assert HOSTILE in urllib.parse.unquote(blob.media_link)
    assert urllib.parse.quote(HOSTILE, safe="") not in blob.media_link


def test_reading_a_hostile_name_builds_the_download_from_bucket_name_and_generation(
        via_proxy: GCSBackend, proxy: RecordingProxy) -> None:
    data = os.urandom(3000)
    info = put(via_proxy, HOSTILE, data)
    proxy.seen.clear()
    with via_proxy.open(HOSTILE) as fh:
        assert fh.read() == data
    downloads = [s for s in proxy.seen if s.path.startswith("/download/")]
    assert downloads, [s.path for s in proxy.seen]
    for s in downloads:
        assert urllib.parse.urlparse(s.path).path.endswith("/o/" + urllib.parse.quote(HOSTILE, safe="~"))
        assert s.query["generation"] == [info.version_id]  # pinned to the object head saw
