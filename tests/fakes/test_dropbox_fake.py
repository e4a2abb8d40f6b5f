"""Pin the fake Dropbox to the documented wire behaviour, with raw HTTP (no SDK in between)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest
import requests
from dropbox.content_hash import DropboxContentHasher

from tests.fakes.dropbox_routes import content_hash
from tests.fakes.dropbox_server import FakeDropbox
from tests.fixtures.dropbox import TOKEN


class Raw:
    """Talks to the fake the way Dropbox's HTTP reference describes."""

    def __init__(self, fake: FakeDropbox, cert: str, token: str = TOKEN):
        self.url, self.cert, self.token = fake.url, cert, token
        self.session = requests.Session()

    def rpc(self, route: str, arg: Any) -> requests.Response:
        return self.session.post(f"{self.url}/2/{route}", data=json.dumps(arg), verify=self.cert, timeout=10,
                                 headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})

    def content(self, route: str, arg: Any, body: bytes = b"") -> requests.Response:
        return self.session.post(f"{self.url}/2/{route}", data=body, verify=self.cert, timeout=10, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/octet-stream",
            "Dropbox-API-Arg": json.dumps(arg)})


@pytest.fixture
def raw(dropbox_fake: FakeDropbox, dropbox_server: Any) -> Raw:
    return Raw(dropbox_fake, dropbox_server.extra["cert"])


def error_of(resp: requests.Response, status: int = 409) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert set(body) == {"error_summary", "error"}
    return body


def folder() -> str:
    return f"/fake-{os.urandom(4).hex()}"


def test_content_hash_follows_the_published_algorithm() -> None:
    data = os.urandom(2 * 4 * 1024 * 1024 + 5)
    sdk = DropboxContentHasher()
    sdk.update(data)
    assert content_hash(data) == sdk.hexdigest()
    blocks = [data[: 4 << 20], data[4 << 20 : 8 << 20], data[8 << 20 :]]
    assert content_hash(data) == hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blocks)).hexdigest()
    assert content_hash(b"") == hashlib.sha256(b"").hexdigest()


def test_a_missing_path_is_409_path_not_found(raw: Raw) -> None:
    missing = f"{folder()}/nothing.jpg"
    body = error_of(raw.rpc("files/get_metadata", {"path": missing}))
    assert body["error_summary"].startswith("path/not_found/")
    assert body["error"] == {".tag": "path", "path": {".tag": "not_found"}}
    body = error_of(raw.content("files/download", {"path": missing}))
    assert body["error"] == {".tag": "path", "path": {".tag": "not_found"}}
    body = error_of(raw.rpc("files/delete_v2", {"path": missing}))
    assert body["error_summary"].startswith("path_lookup/not_found/")
    assert body["error"] == {".tag": "path_lookup", "path_lookup": {".tag": "not_found"}}


def test_an_upload_in_add_mode_over_different_content_is_a_path_conflict(raw: Raw) -> None:
    path = f"{folder()}/a.jpg"
    first = raw.content("files/upload", {"path": path, "mode": "add"}, b"one")
    assert first.status_code == 200
    assert first.json()["content_hash"] == content_hash(b"one")
    body = error_of(raw.content("files/upload", {"path": path, "mode": "add"}, b"two"))
    assert body["error_summary"].startswith("path/conflict/file/")
    assert body["error"][".tag"] == "path"
    assert body["error"]["reason"] == {".tag": "conflict", "conflict": {".tag": "file"}}
    over = raw.content("files/upload", {"path": path, "mode": "overwrite"}, b"two")
    assert over.status_code == 200
    assert over.json()["size"] == 3


def test_a_file_under_a_file_is_a_file_ancestor_conflict(raw: Raw) -> None:
    path = f"{folder()}/a.jpg"
    assert raw.content("files/upload", {"path": path}, b"x").status_code == 200
    body = error_of(raw.content("files/upload", {"path": f"{path}/b.jpg"}, b"y"))
    assert body["error"]["reason"] == {".tag": "conflict", "conflict": {".tag": "file_ancestor"}}


def test_a_session_append_at_the_wrong_offset_names_the_correct_one(raw: Raw) -> None:
    started = raw.content("files/upload_session/start", {}, b"12345")
    assert started.status_code == 200
    session = started.json()["session_id"]
    body = error_of(raw.content("files/upload_session/append_v2",
                                {"cursor": {"session_id": session, "offset": 2}}, b"678"))
    assert body["error_summary"].startswith("incorrect_offset/")
    assert body["error"] == {".tag": "incorrect_offset", "correct_offset": 5}
    ok = raw.content("files/upload_session/append_v2", {"cursor": {"session_id": session, "offset": 5}}, b"678")
    assert ok.status_code == 200
    assert ok.json() is None
    path = f"{folder()}/s.bin"
    body = error_of(raw.content("files/upload_session/finish", {
        "cursor": {"session_id": session, "offset": 5}, "commit": {"path": path}}, b"9"))
    assert body["error"] == {".tag": "lookup_failed",
                             "lookup_failed": {".tag": "incorrect_offset", "correct_offset": 8}}
    done = raw.content("files/upload_session/finish", {
        "cursor": {"session_id": session, "offset": 8}, "commit": {"path": path}}, b"9")
    assert done.status_code == 200
    assert done.json()["content_hash"] == content_hash(b"123456789")
    gone = error_of(raw.content("files/upload_session/append_v2",
                                {"cursor": {"session_id": session, "offset": 9}}, b"x"))
    assert gone["error"] == {".tag": "not_found"}


def test_throttling_is_429_with_retry_after(raw: Raw, dropbox_fake: FakeDropbox) -> None:
    dropbox_fake.inject("/2/files/get_metadata", 429, retry_after=7)
    resp = raw.rpc("files/get_metadata", {"path": f"{folder()}/x"})
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.json()["error"] == {"reason": {".tag": "too_many_requests"}, "retry_after": 7}
    assert raw.rpc("files/get_metadata", {"path": f"{folder()}/x"}).status_code == 409  # only once


@pytest.mark.parametrize("route", ["files/upload", "files/upload_session/start"])
def test_a_content_hash_mismatch_is_rejected_and_nothing_stored(raw: Raw, route: str) -> None:
    path = f"{folder()}/h.bin"
    arg = {"path": path, "content_hash": content_hash(b"expected")} if route == "files/upload" else {
        "content_hash": content_hash(b"expected")}
    body = error_of(raw.content(route, arg, b"received"))
    assert body["error_summary"].startswith("content_hash_mismatch/")
    assert body["error"] == {".tag": "content_hash_mismatch"}
    assert error_of(raw.rpc("files/get_metadata", {"path": path}))["error"]["path"][".tag"] == "not_found"


def test_a_bad_token_is_401_invalid_access_token(dropbox_fake: FakeDropbox, dropbox_server: Any) -> None:
    resp = Raw(dropbox_fake, dropbox_server.extra["cert"], token="wrong").rpc("files/get_metadata", {"path": "/x"})
    body = error_of(resp, 401)
    assert body["error"] == {".tag": "invalid_access_token"}


def test_a_download_answers_in_the_result_header(raw: Raw) -> None:
    path = f"{folder()}/Café.txt"
    assert raw.content("files/upload", {"path": path}, b"hello").status_code == 200
    resp = raw.content("files/download", {"path": path})
    assert resp.status_code == 200
    assert resp.content == b"hello"
    result = json.loads(resp.headers["Dropbox-API-Result"])
    assert result["path_display"] == path
    assert result["content_hash"] == content_hash(b"hello")


def test_a_client_without_the_test_certificate_is_refused(dropbox_fake: FakeDropbox) -> None:
    import certifi

    with pytest.raises(requests.exceptions.SSLError):
        requests.post(f"{dropbox_fake.url}/2/files/get_metadata", data="{}", verify=certifi.where(), timeout=10)


def test_a_stopped_server_drops_kept_alive_connections_and_keeps_state_on_restart(
        raw: Raw, dropbox_server: Any) -> None:
    path = f"{folder()}/kept.txt"
    assert raw.content("files/upload", {"path": path}, b"still here").status_code == 200
    dropbox_server.stop()
    try:
        with pytest.raises(requests.exceptions.ConnectionError):
            raw.rpc("files/get_metadata", {"path": path})
    finally:
        dropbox_server.restart()
    assert raw.rpc("files/get_metadata", {"path": path}).json()["size"] == 10
