"""Box-specific behaviour on the Box fake: chunked sessions, rate limits, folder races, retention, auth forms."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time

import pytest

from providers.backends import backend_from_config
from providers.backends.base import IntegrityError, PermanentError, TransientError
from providers.backends.box import BoxBackend
from tests.fakes.box_server import BoxFakeServer
from tests.fixtures.box import BOX_PART_SIZE, BOX_SESSION_PART_SIZE, box_config


def put_bytes(backend, key: str, data: bytes):
    return backend.put(key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest())


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - Box's checksum


@pytest.fixture
def backend(box_target) -> BoxBackend:
    return box_target.backend


@pytest.fixture
def calls(box_server: BoxFakeServer):
    """The (method, path) requests the fake sees from here on."""
    with box_server.state.lock:
        start = len(box_server.state.requests)

    def since() -> list[tuple[str, str]]:
        with box_server.state.lock:
            return list(box_server.state.requests[start:])

    return since


def test_registry_builds_it(box_server, box_root):
    assert isinstance(backend_from_config(box_config(box_server, box_root)), BoxBackend)


def test_it_maps_keys_to_nested_folders(backend, box_server, box_root):
    put_bytes(backend, "weddings/ana-ben/photo/day 1/a.jpg", b"a")
    state = box_server.state
    path, folder = [], box_root
    for name in ("weddings", "ana-ben", "photo", "day 1"):
        folder = next(i.id for i in state.children(folder) if i.name == name)
        path.append(name)
    assert [i.name for i in state.children(folder)] == ["a.jpg"]


def test_it_uses_a_chunked_session_above_the_part_size(backend, box_server, calls):
    data = os.urandom(BOX_PART_SIZE + 1000)
    info = put_bytes(backend, "weddings/w/video/big.mov", data)
    assert info.checksums == {"sha1": sha1(data)}
    seen = calls()
    parts = [c for c in seen if c[0] == "PUT" and "/upload_sessions/" in c[1]]
    assert len(parts) == -(-len(data) // BOX_SESSION_PART_SIZE)
    assert any(c[1].endswith("/commit") for c in seen)
    assert not any(c[1] == "/api/2.0/files/content" for c in seen)
    assert box_server.state.sessions == {}


def test_it_uploads_small_files_in_one_request(backend, calls):
    put_bytes(backend, "weddings/w/photo/small.jpg", b"x" * 1000)
    assert [c for c in calls() if c[0] in ("POST", "PUT") and "/api/" in c[1]] == [
        ("POST", "/api/2.0/files/content")]


def test_it_overwrites_a_large_file_with_a_new_version_through_a_session(backend, box_server):
    key = "weddings/w/video/again.mov"
    first = put_bytes(backend, key, os.urandom(BOX_PART_SIZE + 10))
    newer = os.urandom(BOX_PART_SIZE + 20)
    second = put_bytes(backend, key, newer)
    assert second.version_id != first.version_id
    with backend.open(key) as fh:
        assert fh.read() == newer


def test_it_aborts_the_session_when_the_source_is_corrupt(backend, box_server, calls):
    data = os.urandom(BOX_PART_SIZE * 2)
    bad = io.BytesIO(data[:-1] + b"\0" if data[-1] else data[:-1] + b"\1")
    with pytest.raises(IntegrityError):
        backend.put("weddings/w/video/bad.mov", bad, len(data), sha256=hashlib.sha256(data).hexdigest())
    assert ("DELETE", next(c[1] for c in calls() if c[0] == "PUT")) in calls()
    assert box_server.state.sessions == {}
    assert not any(c[1].endswith("/commit") for c in calls())


def test_it_falls_back_to_a_plain_upload_below_boxs_chunked_minimum(box_root):
    strict = BoxFakeServer().start()  # Box's real 20 MB minimum for sessions
    try:
        root = strict.state.create_folder("strict")
        backend = BoxBackend(box_config(strict, root, part_size=1024))
        data = os.urandom(5000)
        assert put_bytes(backend, "weddings/w/photo/mid.jpg", data).checksums == {"sha1": sha1(data)}
        assert ("POST", "/api/2.0/files/content") in strict.state.requests
    finally:
        strict.stop()


def test_it_retries_through_rate_limits(backend, box_server, calls):
    box_server.state.inject(429, times=2, retry_after="0", path_contains="/files/content")
    data = os.urandom(2000)
    assert put_bytes(backend, "weddings/w/photo/limited.jpg", data).checksums == {"sha1": sha1(data)}
    assert [c for c in calls() if c == ("POST", "/api/2.0/files/content")] == [("POST", "/api/2.0/files/content")] * 3


def test_it_gives_up_quickly_on_a_long_retry_after(backend, box_server):
    box_server.state.inject(429, times=10, retry_after="3600")
    started = time.monotonic()
    with pytest.raises(TransientError):
        backend.head("weddings/w/photo/x.jpg")
    assert time.monotonic() - started < 5


def test_it_reports_server_errors_as_transient(backend, box_server):
    box_server.state.inject(503, times=10, retry_after="0")
    with pytest.raises(TransientError):
        put_bytes(backend, "weddings/w/photo/down.jpg", b"x")


def test_it_reuses_a_folder_created_by_someone_else(backend, box_server, box_root, calls):
    weddings = box_server.state.create_folder("weddings", box_root)
    put_bytes(backend, "weddings/x.jpg", b"x")
    assert [i.id for i in box_server.state.children(box_root)] == [weddings]
    assert ("POST", "/2.0/folders") in calls()  # it tried, got 409, and used the conflict's id


def test_it_survives_a_folder_creation_race(box_server, box_root):
    backends = [BoxBackend(box_config(box_server, box_root)) for _ in range(6)]
    barrier = threading.Barrier(len(backends))
    errors: list[BaseException] = []

    def run(i: int, backend: BoxBackend) -> None:
        barrier.wait()
        try:
            put_bytes(backend, f"weddings/race/photo/{i}.jpg", bytes([i]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(backends)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(o.key for o in backends[0].list("weddings/race/")) == [
        f"weddings/race/photo/{i}.jpg" for i in range(6)]


def test_it_assigns_the_retention_policy_to_the_wedding_folder(box_server, box_root):
    box_server.state.policies["9001"] = "Weddings: 7 years"
    config = box_config(box_server, box_root, options={"root_folder_id": box_root, "retention_policy_id": "9001"})
    put_bytes(BoxBackend(config), "weddings/kept/photo/a.jpg", b"a")
    put_bytes(BoxBackend(config), "weddings/kept/photo/b.jpg", b"b")  # a new instance: 409, tolerated
    weddings = next(i for i in box_server.state.children(box_root) if i.name == "weddings")
    wedding = next(i for i in box_server.state.children(weddings.id) if i.name == "kept")
    assigned = [a for a in box_server.state.assignments.values() if a["assigned_to"]["id"] == wedding.id]
    assert [a["retention_policy"]["id"] for a in assigned] == ["9001"]


def test_it_names_a_missing_retention_policy(box_server, box_root):
    config = box_config(box_server, box_root, options={"root_folder_id": box_root, "retention_policy_id": "404"})
    with pytest.raises(PermanentError, match="retention"):
        put_bytes(BoxBackend(config), "weddings/nope/photo/a.jpg", b"a")


def test_it_refuses_a_key_that_differs_only_in_case_from_an_existing_one(backend):
    put_bytes(backend, "weddings/w/photo/A.jpg", b"upper")
    with pytest.raises(PermanentError, match="ignore case"):
        put_bytes(backend, "weddings/w/photo/a.jpg", b"lower")
    with backend.open("weddings/w/photo/A.jpg") as fh:
        assert fh.read() == b"upper"


def test_it_authenticates_with_client_credentials(box_server, box_root):
    box_server.state.apps["cid"] = "csecret"
    creds = {"client_id": "cid", "client_secret": "csecret", "enterprise_id": "42"}
    backend = BoxBackend(box_config(box_server, box_root, credentials=creds))
    assert put_bytes(backend, "weddings/w/photo/ccg.jpg", b"ccg").size == 3


def test_it_reports_wrong_client_credentials_as_permanent_without_the_secret(box_server, box_root):
    box_server.state.apps["cid2"] = "right"
    creds = {"client_id": "cid2", "client_secret": "wrong-secret-value", "user_id": "7"}
    backend = BoxBackend(box_config(box_server, box_root, credentials=creds))
    with pytest.raises(PermanentError) as caught:
        put_bytes(backend, "weddings/w/photo/ccg.jpg", b"ccg")
    assert "wrong-secret-value" not in str(caught.value)


def test_it_rejects_unusable_credentials_and_options(box_server, box_root):
    with pytest.raises(PermanentError):
        BoxBackend(box_config(box_server, box_root, credentials={}))
    with pytest.raises(PermanentError):
        BoxBackend(box_config(box_server, box_root, options={"base_url": "http://elsewhere"}))


def test_it_names_a_missing_root_folder(box_server, box_root):
    backend = BoxBackend(box_config(box_server, box_root, options={"root_folder_id": "999"}))
    with pytest.raises(PermanentError, match="999"):
        put_bytes(backend, "weddings/w/photo/a.jpg", b"a")


def test_it_deletes_for_good(backend, box_server):
    put_bytes(backend, "weddings/w/photo/gone.jpg", b"gone")
    backend.delete("weddings/w/photo/gone.jpg")
    assert not any(f.name == "gone.jpg" for f in box_server.state.files.values())


def child(state, folder_id: str, name: str):
    return next(i for i in state.children(folder_id) if i.name == name)


def test_it_recovers_when_a_cached_folder_is_deleted_behind_its_back(backend, box_server, box_root):
    put_bytes(backend, "weddings/w/photo/a.jpg", b"a")
    state = box_server.state
    with state.lock:
        photo = child(state, child(state, child(state, box_root, "weddings").id, "w").id, "photo")
        del state.folders[photo.id]
        for file_id in [f.id for f in state.files.values() if f.parent_id == photo.id]:
            del state.files[file_id]
    with pytest.raises(TransientError):
        put_bytes(backend, "weddings/w/photo/b.jpg", b"b")
    assert put_bytes(backend, "weddings/w/photo/b.jpg", b"b").size == 1
    assert backend.head("weddings/w/photo/a.jpg") is None


def jwt_app(box_server, client_id: str, *, kid: str = "key-1") -> dict:
    """A Box JWT app's config JSON (as Box's developer console downloads it), its public key registered."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    passphrase = "pass-phrase-for-the-test"
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.BestAvailableEncryption(passphrase.encode())).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    box_server.state.apps[client_id] = "jwt-secret"
    box_server.state.jwt_keys[client_id] = (kid, public_pem)
    return {"boxAppSettings": {"clientID": client_id, "clientSecret": "jwt-secret",
                               "appAuth": {"publicKeyID": kid, "privateKey": private_pem, "passphrase": passphrase}},
            "enterpriseID": "42"}


def test_it_authenticates_as_a_jwt_app(box_server, box_root):
    backend = BoxBackend(box_config(box_server, box_root, credentials=jwt_app(box_server, "jwt-app")))
    assert put_bytes(backend, "weddings/w/photo/jwt.jpg", b"jwt").size == 3
    with backend.open("weddings/w/photo/jwt.jpg") as fh:
        assert fh.read() == b"jwt"


def test_a_jwt_signed_with_another_key_is_refused_as_permanent(box_server, box_root):
    creds = jwt_app(box_server, "jwt-app-2")
    other = jwt_app(box_server, "jwt-app-other")
    creds["boxAppSettings"]["appAuth"]["privateKey"] = other["boxAppSettings"]["appAuth"]["privateKey"]
    creds["boxAppSettings"]["appAuth"]["passphrase"] = other["boxAppSettings"]["appAuth"]["passphrase"]
    backend = BoxBackend(box_config(box_server, box_root, credentials=creds))
    with pytest.raises(PermanentError) as caught:
        put_bytes(backend, "weddings/w/photo/jwt.jpg", b"jwt")
    assert "pass-phrase-for-the-test" not in str(caught.value) and "PRIVATE KEY" not in str(caught.value)
