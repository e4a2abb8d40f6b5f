"""B2-specific behaviour the contract suite cannot express, on b2sdk's simulator."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from b2sdk.v2 import exception as b2exc

from providers.backends.b2 import SHA256_INFO
from providers.backends.base import IntegrityError, ObjectNotFound, PermanentError, TransientError
from tests.fixtures.b2 import BUCKET, PART_SIZE, B2Sim

CAPS = ["listBuckets", "listFiles", "readFiles", "writeFiles", "deleteFiles"]


def put(backend, key: str, data: bytes, **kw):
    return backend.put(key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(), **kw)


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def sim_bucket(env: B2Sim, name: str = BUCKET):
    return env.sim.bucket_name_to_bucket[name]


def versions(env: B2Sim, key: str) -> list[str]:
    """Every version of key the simulator holds: uploads, hide markers, unfinished large files."""
    return [action for (name, _), f in sorted(sim_bucket(env).file_name_and_id_to_file.items())
            if name == key for action in [f.action]]


def test_it_uploads_a_small_file_in_one_request_with_the_sha1_b2_checked(b2_sim):
    backend, data = b2_sim.backend(), b"hello wedding"
    info = put(backend, "w/a.txt", data, metadata={"wedding": "smith"})
    assert info.checksums == {"sha1": sha1(data), "sha256": hashlib.sha256(data).hexdigest()}
    stored = sim_bucket(b2_sim).file_id_to_file[info.version_id]
    assert stored.action == "upload" and not hasattr(stored, "parts")
    assert stored.content_sha1 == sha1(data)
    assert backend.head("w/a.txt").metadata == {"wedding": "smith"}
    with backend.open("w/a.txt") as fh:
        assert fh.read() == data


def test_it_uses_the_large_file_api_above_part_size_with_a_sha1_per_part(b2_sim):
    backend = b2_sim.backend()
    data = os.urandom(2 * PART_SIZE + 123)
    info = put(backend, "w/big.bin", data)
    stored = sim_bucket(b2_sim).file_id_to_file[info.version_id]
    parts = [p for p in stored.parts if p is not None]
    assert [p.content_length for p in parts] == [PART_SIZE, PART_SIZE, 123]
    for i, part in enumerate(parts):
        assert part.content_sha1 == sha1(data[i * PART_SIZE:(i + 1) * PART_SIZE])
    assert stored.content_sha1 == "none"
    assert stored.file_info[SHA256_INFO] == hashlib.sha256(data).hexdigest()
    assert info.size == len(data) and info.checksums == {"sha256": hashlib.sha256(data).hexdigest()}
    with backend.open("w/big.bin") as fh:
        assert fh.read() == data


def test_a_large_upload_whose_source_changed_is_cancelled_not_committed(b2_sim):
    backend = b2_sim.backend()
    data = os.urandom(PART_SIZE + 10)
    with pytest.raises(IntegrityError):
        backend.put("w/big.bin", io.BytesIO(data), len(data), sha256="0" * 64)
    assert versions(b2_sim, "w/big.bin") == []  # cancelled, so no unfinished large file either
    assert backend.head("w/big.bin") is None


def test_a_small_upload_whose_source_changed_writes_nothing(b2_sim):
    backend = b2_sim.backend()
    with pytest.raises(IntegrityError):
        backend.put("w/a.txt", io.BytesIO(b"changed"), 7, sha256="0" * 64)
    assert versions(b2_sim, "w/a.txt") == []


def test_head_and_list_show_the_latest_visible_version_and_delete_removes_all(b2_sim):
    backend = b2_sim.backend()
    put(backend, "w/a.txt", b"first")
    second = put(backend, "w/a.txt", b"second!")
    put(backend, "w/b.txt", b"other")
    assert versions(b2_sim, "w/a.txt") == ["upload", "upload"]
    assert backend.head("w/a.txt").version_id == second.version_id
    assert [(o.key, o.size) for o in backend.list("w/")] == [("w/a.txt", 7), ("w/b.txt", 5)]

    b2_sim.api.get_bucket_by_name(BUCKET).hide_file("w/a.txt")
    assert versions(b2_sim, "w/a.txt") == ["hide", "upload", "upload"]
    assert backend.head("w/a.txt") is None
    assert [o.key for o in backend.list("w/")] == ["w/b.txt"]
    with pytest.raises(ObjectNotFound):
        backend.open("w/a.txt")

    backend.delete("w/a.txt")
    assert versions(b2_sim, "w/a.txt") == []
    assert backend.head("w/b.txt") is not None
    backend.delete("w/a.txt")  # missing is a no-op


def test_delete_also_cancels_an_unfinished_large_file(b2_sim):
    bucket = b2_sim.api.get_bucket_by_name(BUCKET)
    b2_sim.api.session.start_large_file(bucket.id_, "w/big.bin", "application/octet-stream", {})
    assert versions(b2_sim, "w/big.bin") == ["start"]
    b2_sim.backend().delete("w/big.bin")
    assert versions(b2_sim, "w/big.bin") == []


def test_open_refuses_bytes_whose_sha1_differs_from_what_b2_recorded(b2_sim):
    backend = b2_sim.backend()
    info = put(backend, "w/a.txt", b"original bytes")
    sim_bucket(b2_sim).file_id_to_file[info.version_id].data_bytes = b"tampered bytes"
    with pytest.raises(IntegrityError), backend.open("w/a.txt") as fh:
        fh.read()


def test_a_key_restricted_to_the_bucket_works_even_without_a_bucket_configured(b2_sim):
    bucket = b2_sim.api.get_bucket_by_name(BUCKET)
    key = b2_sim.api.create_key(CAPS, "only-this-bucket", bucket_id=bucket.id_)
    creds = {"application_key_id": key.id_, "application_key": key.application_key}
    backend = b2_sim.backend(credentials=creds)
    put(backend, "w/a.txt", b"restricted")
    put(backend, "w/big.bin", os.urandom(PART_SIZE + 1))
    assert b2_sim.backend(credentials=creds, bucket="").head("w/a.txt").size == len(b"restricted")
    backend.delete("w/big.bin")
    assert versions(b2_sim, "w/big.bin") == []


def test_a_key_restricted_to_another_bucket_fails_clearly(b2_sim):
    other = b2_sim.api.create_bucket("other-bucket", "allPrivate")
    key = b2_sim.api.create_key(CAPS, "only-other", bucket_id=other.id_)
    backend = b2_sim.backend(credentials={"application_key_id": key.id_, "application_key": key.application_key})
    with pytest.raises(PermanentError, match=r"restricted to bucket 'other-bucket'.*'wedbackup-test'"):
        put(backend, "w/a.txt", b"nope")
    assert versions(b2_sim, "w/a.txt") == []


def test_wrong_credentials_and_a_missing_bucket_are_permanent_errors(b2_sim):
    bad = b2_sim.backend(credentials={**b2_sim.config.credentials, "application_key": "K005-not-the-key"})
    with pytest.raises(PermanentError, match="refused the application key"):
        bad.head("w/a.txt")
    probe = bad.probe()
    assert not probe.ok and "K005-not-the-key" not in probe.error
    with pytest.raises(PermanentError, match="'no-such-bucket' does not exist"):
        b2_sim.backend(bucket="no-such-bucket").head("w/a.txt")


def test_an_expired_token_is_renewed_but_a_deleted_key_is_permanent(b2_sim):
    bucket = b2_sim.api.get_bucket_by_name(BUCKET)
    key = b2_sim.api.create_key(CAPS, "short-lived", bucket_id=bucket.id_)
    backend = b2_sim.backend(credentials={"application_key_id": key.id_, "application_key": key.application_key})
    assert backend.head("w/a.txt") is None
    b2_sim.sim.expire_auth_token(b2_sim.sim.current_token)
    assert backend.head("w/a.txt") is None  # b2sdk re-authorized once
    b2_sim.api.delete_key_by_id(key.id_)
    b2_sim.sim.expire_auth_token(b2_sim.sim.current_token)
    with pytest.raises(PermanentError):
        backend.head("w/a.txt")


def test_transient_upload_errors_are_retried_then_succeed(b2_sim):
    backend = b2_sim.backend()
    b2_sim.sim.set_upload_errors([b2exc.ServiceError("503 service unavailable"), b2exc.B2ConnectionError("reset")])
    info = put(backend, "w/a.txt", b"eventually")
    assert b2_sim.sim.upload_errors == []
    assert backend.head("w/a.txt").version_id == info.version_id
    assert versions(b2_sim, "w/a.txt") == ["upload"]


def test_persistent_transient_errors_surface_as_transient_error(b2_sim):
    b2_sim.sim.set_upload_errors([b2exc.ServiceError("500 boom") for _ in range(4)])
    with pytest.raises(TransientError):
        put(b2_sim.backend(), "w/a.txt", b"never")
    assert versions(b2_sim, "w/a.txt") == []


def test_a_permanent_upload_error_is_not_retried(b2_sim):
    b2_sim.sim.set_upload_errors([b2exc.StorageCapExceeded(), b2exc.ServiceError("unused")])
    with pytest.raises(PermanentError) as caught:
        put(b2_sim.backend(), "w/a.txt", b"capped")
    assert not isinstance(caught.value, TransientError)
    assert b2_sim.sim.upload_errors != []  # the second error was never reached
    assert versions(b2_sim, "w/a.txt") == []
