"""What the contract suite cannot express for S3/Wasabi: SSE, checksum headers, Glacier, versions, endpoints.

Most tests run on SeaweedFS. SeaweedFS has no restore_object (its Glacier objects stay readable) and no
lifecycle transitions, so the Glacier tests run on moto's server instead; moto checks no credentials and
no checksums (and reports no SHA-256 on HEAD, which exercises the ETag fallback).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from providers.backends import backend_from_config
from providers.backends.base import (
    BackendConfig,
    IntegrityError,
    NeedsRestore,
    PermanentError,
    ProviderError,
)
from providers.backends.s3 import S3Backend, WasabiBackend
from providers.localservers.base import RunningServer
from providers.localservers.seaweedfs import create_bucket, s3_client
from tests.fixtures.s3 import PART_SIZE, drop_bucket, ensure_running, new_bucket_name, seaweedfs_config


def put(backend: S3Backend, key: str, data: bytes, **kwargs: Any):
    return backend.put(key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(), **kwargs)


def record_headers(backend: S3Backend) -> list[tuple[str, dict[str, str]]]:
    """Record (operation, headers) of every request the backend's client sends (botocore's event hooks)."""
    sent: list[tuple[str, dict[str, str]]] = []

    def hook(request: Any, event_name: str, **_: Any) -> None:
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
        sent.append((event_name.rsplit(".", 1)[-1], headers))

    backend.client.meta.events.register("before-send.s3", hook)
    return sent


@pytest.fixture
def bucket(seaweedfs: RunningServer) -> Iterator[str]:
    ensure_running(seaweedfs)
    name = create_bucket(seaweedfs, new_bucket_name())
    yield name
    drop_bucket(seaweedfs, name)


@pytest.fixture
def make(seaweedfs: RunningServer, bucket: str):
    def make(**overrides: Any) -> S3Backend:
        return backend_from_config(seaweedfs_config(seaweedfs, "aws_s3", overrides.pop("bucket", bucket), **overrides))

    return make


@pytest.fixture
def moto_backend(moto_s3: RunningServer) -> S3Backend:
    endpoint = str(moto_s3.extra["endpoint"])
    bucket = new_bucket_name()
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="moto",
                 aws_secret_access_key="moto").create_bucket(Bucket=bucket)
    return backend_from_config(BackendConfig(
        name="moto", kind="aws_s3", bucket=bucket, endpoint=endpoint, part_size=PART_SIZE,
        credentials={"access_key_id": "moto", "secret_access_key": "moto"}))


# -- checksums on the wire --------------------------------------------------------------------------
def test_it_sends_our_sha256_and_no_botocore_crc(make) -> None:
    backend = make()
    sent = record_headers(backend)
    data = os.urandom(1000)
    put(backend, "a.jpg", data)
    puts = [h for op, h in sent if op == "PutObject"]
    assert len(puts) == 1
    assert puts[0]["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert "content-md5" not in puts[0]  # one integrity header, not two
    assert not any(h.startswith("x-amz-checksum-crc") for h in puts[0])


def test_it_uploads_parts_with_sha256_and_the_server_agrees_on_the_composite(make, seaweedfs, bucket) -> None:
    backend = make()
    sent = record_headers(backend)
    data = os.urandom(PART_SIZE * 2 + 10)
    info = put(backend, "big.mov", data)
    assert info.checksums == {"sha256": hashlib.sha256(data).hexdigest()}
    ops = [op for op, _ in sent]
    assert ops.count("UploadPart") == 3
    assert all("x-amz-checksum-sha256" in h for op, h in sent if op == "UploadPart")
    assert not any("content-md5" in h for op, h in sent if op == "UploadPart")
    reported = s3_client(seaweedfs).head_object(Bucket=bucket, Key="big.mov", ChecksumMode="ENABLED")
    parts = [data[i : i + PART_SIZE] for i in range(0, len(data), PART_SIZE)]
    composite = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    assert reported["ChecksumSHA256"] == f"{base64.b64encode(composite).decode()}-3"


def test_a_single_put_is_verified_by_the_servers_answer_without_a_head(make, seaweedfs, bucket) -> None:
    backend = make()
    sent = record_headers(backend)
    data = os.urandom(5000)
    info = put(backend, "one.jpg", data, metadata={"wedding": "w1"})
    assert [op for op, _ in sent] == ["PutObject"]  # the answer carried the checked SHA-256: no HEAD
    # The body is not hashed again for the signature: the signed checksum header protects it.
    assert sent[0][1]["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert "x-amz-checksum-sha256" in sent[0][1]["authorization"].lower()  # ...and that header is signed
    sha = hashlib.sha256(data).hexdigest()
    assert (info.size, info.checksums, info.storage_class, info.metadata) == (
        len(data), {"sha256": sha}, "STANDARD", {"wedding": "w1"})
    stored = s3_client(seaweedfs).head_object(Bucket=bucket, Key="one.jpg", ChecksumMode="ENABLED")
    assert base64.b64decode(stored["ChecksumSHA256"]).hex() == sha
    assert stored["ETag"].strip('"') == info.etag


def test_a_put_answer_without_the_checksum_is_checked_with_a_head(make) -> None:
    """A server that does not know x-amz-checksum-sha256 does not echo it: the HEAD decides."""
    backend = make()
    sent = record_headers(backend)

    def hide(parsed: dict[str, Any], **_: Any) -> None:
        parsed.pop("ChecksumSHA256", None)

    backend.client.meta.events.register("after-call.s3.PutObject", hide)
    data = os.urandom(5000)
    info = put(backend, "two.jpg", data)
    assert [op for op, _ in sent] == ["PutObject", "HeadObject"]
    assert info.checksums == {"sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("operation", ["PutObject", "UploadPart"])
def test_it_maps_bytes_corrupted_in_transit_to_integrity_error(make, operation: str) -> None:
    """Flip a byte after we hashed it (botocore signs what it sends): the server's SHA-256 check refuses it."""
    backend = make()

    def corrupt(params: dict[str, Any], **_: Any) -> None:
        body = params["Body"]
        params["Body"] = bytes([body[0] ^ 0xFF]) + body[1:]

    backend.client.meta.events.register(f"before-parameter-build.s3.{operation}", corrupt)
    data = os.urandom(1000 if operation == "PutObject" else PART_SIZE + 1000)
    with pytest.raises(IntegrityError, match="BadDigest"):
        put(backend, "x.jpg", data)
    assert backend.head("x.jpg") is None


def test_a_hashed_buffer_is_not_hashed_again_and_part_md5s_stop_once_the_server_reports_sha256(
    make, monkeypatch
) -> None:
    """The engine hands every target the same verified buffer: its sha256 is reused, not recomputed."""
    import providers.backends.base as base
    import providers.backends.s3 as s3

    backend = make()
    calls = {"sha256": 0, "md5": 0}

    class Counting:
        def __init__(self, name: str, real: Any):
            self.name, self.real = name, real

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            calls[self.name] += 1
            return self.real(*args, **kwargs)

    fake = type("hashlib", (), {"sha256": Counting("sha256", hashlib.sha256), "md5": Counting("md5", hashlib.md5),
                                "new": hashlib.new})
    monkeypatch.setattr(base, "hashlib", fake)
    monkeypatch.setattr(s3, "hashlib", fake)
    small = os.urandom(1000)
    info = backend.put("small.jpg", base.HashedBuffer(small, hashlib.sha256(small).hexdigest()), len(small),
                       sha256=hashlib.sha256(small).hexdigest())
    assert info.checksums == {"sha256": hashlib.sha256(small).hexdigest()}
    assert calls == {"sha256": 0, "md5": 0}  # the buffer's digest went out as ChecksumSHA256 and was checked

    big = os.urandom(PART_SIZE * 2 + 10)
    # The small put was verified by PutObject's answer: no HEAD has shown yet whether the server reports a
    # multipart composite, so the first multipart upload still keeps part MD5s for the ETag fallback...
    backend.put("big.mov", base.HashedBuffer(big), len(big), sha256=hashlib.sha256(big).hexdigest())
    assert calls == {"sha256": 1 + 3 + 1, "md5": 3}
    calls.update(sha256=0, md5=0)
    # ...and once its HEAD has shown it, the next one does not. HashedBuffer(big) hashed once itself; then 3
    # part digests and the composite; no whole-file pass, no MD5.
    backend.put("big2.mov", base.HashedBuffer(big), len(big), sha256=hashlib.sha256(big).hexdigest())
    assert calls == {"sha256": 1 + 3 + 1, "md5": 0}


def test_a_buffer_whose_digest_is_wrong_is_refused(make) -> None:
    import providers.backends.base as base

    data = os.urandom(1000)
    with pytest.raises(IntegrityError):
        make().put("x.jpg", base.HashedBuffer(data, "0" * 64), len(data), sha256=hashlib.sha256(data).hexdigest())


# -- server-side encryption -------------------------------------------------------------------------
def test_it_stores_with_sse_s3(make, seaweedfs, bucket) -> None:
    backend = make(options={"sse": "AES256"})
    sent = record_headers(backend)
    data = os.urandom(PART_SIZE + 5)
    put(backend, "small.jpg", b"tiny")
    put(backend, "big.jpg", data)
    for op in ("PutObject", "CreateMultipartUpload"):
        assert [h["x-amz-server-side-encryption"] for o, h in sent if o == op] == ["AES256"]
    client = s3_client(seaweedfs)
    assert client.head_object(Bucket=bucket, Key="small.jpg")["ServerSideEncryption"] == "AES256"
    with backend.open("big.jpg") as fh:
        assert fh.read() == data


def test_it_sends_sse_kms_with_the_key_id(make) -> None:
    """SeaweedFS has no KMS configured (it answers InternalError), so check the request itself."""
    backend = make(options={"sse": "aws:kms", "kms_key_id": "alias/wedbackup"})
    sent = record_headers(backend)
    with contextlib.suppress(ProviderError):
        put(backend, "kms.jpg", b"secret photo")
    headers = next(h for op, h in sent if op == "PutObject")
    assert headers["x-amz-server-side-encryption"] == "aws:kms"
    assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/wedbackup"


@pytest.mark.parametrize("options", [{"sse": "rot13"}, {"kms_key_id": "k"}, {"addressing_style": "sideways"},
                                     {"storage": "x"}])
def test_it_rejects_bad_options(make, options: dict[str, str]) -> None:
    with pytest.raises(PermanentError):
        make(options=options)


def test_it_rejects_missing_credentials(make) -> None:
    with pytest.raises(PermanentError, match="access_key_id"):
        make(credentials={"access_key_id": "only-this"})


def test_it_lists_lazily_one_page_per_request(make) -> None:
    backend = make()
    for i in range(5):
        put(backend, f"p/{i}.jpg", b"x")
    backend.page_size = 2
    sent = record_headers(backend)
    listing = backend.list("p/")
    assert next(listing).key == "p/0.jpg"
    assert [op for op, _ in sent] == ["ListObjectsV2"]
    assert [o.key for o in listing] == [f"p/{i}.jpg" for i in range(1, 5)]
    assert [op for op, _ in sent] == ["ListObjectsV2"] * 3


# -- classes, versions, missing buckets -------------------------------------------------------------
def test_it_keeps_content_type_and_metadata_when_changing_class(make, seaweedfs, bucket) -> None:
    backend = make()
    data = os.urandom(3000)
    put(backend, "w/photo.jpg", data, content_type="image/jpeg", metadata={"wedding": "zoe-and-asa"})
    info = backend.change_storage_class("w/photo.jpg", "GLACIER_IR")
    assert info.storage_class == "GLACIER_IR"
    assert info.checksums == {"sha256": hashlib.sha256(data).hexdigest()}
    raw = s3_client(seaweedfs).head_object(Bucket=bucket, Key="w/photo.jpg")
    assert raw["ContentType"] == "image/jpeg"
    assert raw["Metadata"] == {"wedding": "zoe-and-asa"}
    assert raw["StorageClass"] == "GLACIER_IR"
    assert backend.head("w/photo.jpg").metadata == {"wedding": "zoe-and-asa"}


def test_it_rejects_an_unknown_storage_class(make) -> None:
    backend = make()
    with pytest.raises(PermanentError):
        put(backend, "x.jpg", b"x", storage_class="REDUCED_REDUNDANCY")


def test_it_deletes_every_version_in_a_versioned_bucket(make, seaweedfs) -> None:
    bucket = create_bucket(seaweedfs, new_bucket_name(), versioning=True)
    backend = make(bucket=bucket)
    for i in range(3):
        put(backend, "v/photo.jpg", f"edit {i}".encode())
    put(backend, "v/photo.jpg.bak", b"neighbour")
    backend.delete("v/photo.jpg")
    listing = s3_client(seaweedfs).list_object_versions(Bucket=bucket, Prefix="v/")
    left = [(v["Key"]) for v in listing.get("Versions", []) + listing.get("DeleteMarkers", [])]
    assert left == ["v/photo.jpg.bak"]
    assert backend.head("v/photo.jpg") is None
    drop_bucket(seaweedfs, bucket)


def test_it_leaves_one_version_after_a_class_change_in_a_versioned_bucket(make, seaweedfs) -> None:
    bucket = create_bucket(seaweedfs, new_bucket_name(), versioning=True)
    backend = make(bucket=bucket)
    put(backend, "v/photo.jpg", b"the photo", content_type="image/jpeg")
    backend.change_storage_class("v/photo.jpg", "STANDARD_IA")
    versions = s3_client(seaweedfs).list_object_versions(Bucket=bucket, Prefix="v/").get("Versions", [])
    assert [v["StorageClass"] for v in versions] == ["STANDARD_IA"]
    with backend.open("v/photo.jpg") as fh:
        assert fh.read() == b"the photo"
    drop_bucket(seaweedfs, bucket)


def test_it_raises_for_head_on_a_missing_bucket_instead_of_none(make) -> None:
    missing = f"wbmissing-{uuid.uuid4().hex[:12]}"
    with pytest.raises(PermanentError, match=missing):
        make(bucket=missing).head("x.jpg")


# -- Glacier (moto) ---------------------------------------------------------------------------------
@pytest.mark.parametrize("archive_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_it_needs_a_restore_before_reading_an_archived_object(moto_backend: S3Backend, archive_class: str) -> None:
    data = b"first dance, raw"
    info = put(moto_backend, "a/dance.mov", data, storage_class=archive_class)
    assert info.checksums == {"md5": hashlib.md5(data).hexdigest()}  # noqa: S324 - moto reports only the ETag
    with pytest.raises(NeedsRestore):
        moto_backend.open("a/dance.mov")
    with pytest.raises(NeedsRestore):
        moto_backend.change_storage_class("a/dance.mov", "STANDARD")
    moto_backend.request_restore("a/dance.mov", days=1)
    moto_backend.request_restore("a/dance.mov", days=1)  # asking again is harmless
    with moto_backend.open("a/dance.mov") as fh:
        assert fh.read() == data


def test_it_ignores_a_restore_request_for_a_readable_object(moto_backend: S3Backend) -> None:
    put(moto_backend, "a/photo.jpg", b"photo")
    moto_backend.request_restore("a/photo.jpg")
    with moto_backend.open("a/photo.jpg") as fh:
        assert fh.read() == b"photo"


# -- Wasabi -----------------------------------------------------------------------------------------
def wasabi(**fields: Any) -> WasabiBackend:
    return WasabiBackend(BackendConfig(name="w", kind="wasabi", bucket="photos",
                                       credentials={"access_key_id": "a", "secret_access_key": "b"}, **fields))


def test_wasabi_derives_its_endpoint_from_the_region() -> None:
    assert wasabi(region="eu-central-2").client.meta.endpoint_url == "https://s3.eu-central-2.wasabisys.com"
    assert wasabi().client.meta.endpoint_url == "https://s3.us-east-1.wasabisys.com"
    assert wasabi(endpoint="http://127.0.0.1:9").client.meta.endpoint_url == "http://127.0.0.1:9"


def test_wasabi_has_one_class_and_no_archive(seaweedfs, bucket) -> None:
    backend = backend_from_config(seaweedfs_config(seaweedfs, "wasabi", bucket))
    assert isinstance(backend, WasabiBackend)
    with pytest.raises(PermanentError):
        put(backend, "x.jpg", b"x", storage_class="STANDARD_IA")
    assert put(backend, "x.jpg", b"x").storage_class == "STANDARD"
    with pytest.raises(PermanentError):
        backend.change_storage_class("x.jpg", "STANDARD")
    with pytest.raises(PermanentError):
        backend.request_restore("x.jpg")


def test_it_names_the_bucket_but_never_the_secret_when_credentials_are_refused(make, bucket) -> None:
    backend = make(credentials={"access_key_id": "wedbackup-test", "secret_access_key": "not-the-secret-42"})
    with pytest.raises(PermanentError) as caught:
        put(backend, "x.jpg", b"x")
    assert bucket in str(caught.value)
    assert "not-the-secret-42" not in str(caught.value)
    assert "SignatureDoesNotMatch" in str(caught.value)
