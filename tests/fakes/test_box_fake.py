"""The Box fake keeps the documented shapes the backend relies on (plain HTTP, no SDK)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator

import pytest
import requests

from tests.fakes.box_server import BoxFakeServer

PART = 1024


@pytest.fixture(scope="module")
def fake() -> Iterator[BoxFakeServer]:
    server = BoxFakeServer(part_size=PART, min_chunked_size=1).start()
    yield server
    server.stop()


@pytest.fixture
def http(fake: BoxFakeServer) -> requests.Session:
    fake.state.clear_faults()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {fake.token}"
    return session


@pytest.fixture
def folder(fake: BoxFakeServer) -> str:
    return fake.state.create_folder(f"f-{os.urandom(6).hex()}")


def sha(data: bytes) -> str:
    return "sha=" + base64.b64encode(hashlib.sha1(data).digest()).decode()  # noqa: S324


def upload(fake: BoxFakeServer, http: requests.Session, folder: str, name: str, data: bytes,
           md5: str | None = None) -> requests.Response:
    files = {"attributes": (None, json.dumps({"name": name, "parent": {"id": folder}})), "file": (name, data)}
    headers = {"Content-MD5": md5 or hashlib.sha1(data).hexdigest()}  # noqa: S324
    return http.post(f"{fake.url}/api/2.0/files/content", files=files, headers=headers)


def test_it_answers_a_folder_name_conflict_with_the_existing_folder_in_a_list(fake, http, folder) -> None:
    first = http.post(f"{fake.url}/2.0/folders", json={"name": "Album", "parent": {"id": folder}})
    assert first.status_code == 201
    again = http.post(f"{fake.url}/2.0/folders", json={"name": "album", "parent": {"id": folder}})
    assert again.status_code == 409
    body = again.json()
    assert body["type"] == "error" and body["code"] == "item_name_in_use"
    assert body["context_info"]["conflicts"][0]["id"] == first.json()["id"]
    assert body["context_info"]["conflicts"][0]["type"] == "folder"


def test_it_answers_a_file_name_conflict_with_one_object(fake, http, folder) -> None:
    assert upload(fake, http, folder, "a.jpg", b"one").status_code == 201
    again = upload(fake, http, folder, "a.jpg", b"two")
    assert again.status_code == 409
    conflict = again.json()["context_info"]["conflicts"]
    assert conflict["type"] == "file" and conflict["name"] == "a.jpg"
    assert conflict["sha1"] == hashlib.sha1(b"one").hexdigest()  # noqa: S324


def test_it_answers_404_with_the_standard_error_object(fake, http) -> None:
    response = http.get(f"{fake.url}/2.0/files/123")
    assert response.status_code == 404
    body = response.json()
    assert {"type", "status", "code", "message", "request_id", "help_url"} <= set(body)
    assert (body["type"], body["status"], body["code"]) == ("error", 404, "not_found")


def test_it_answers_401_with_an_empty_body_to_a_bad_token(fake) -> None:
    response = requests.get(f"{fake.url}/2.0/folders/0", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.content == b""
    assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_it_refuses_an_upload_whose_content_md5_is_not_its_sha1(fake, http, folder) -> None:
    response = upload(fake, http, folder, "b.jpg", b"data", md5=hashlib.sha1(b"other").hexdigest())  # noqa: S324
    assert response.status_code == 400
    assert response.json()["code"] == "bad_digest"


def test_it_answers_429_with_retry_after_when_told_to(fake, http) -> None:
    fake.state.inject(429, retry_after="3", path_contains="/folders/")
    limited = http.get(f"{fake.url}/2.0/folders/0")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert limited.json()["code"] == "rate_limit_exceeded"
    assert http.get(f"{fake.url}/2.0/folders/0").status_code == 200


def test_it_pages_folder_items_by_marker_and_by_offset(fake, http, folder) -> None:
    for i in range(5):
        fake.state.write_file(folder, f"n{i}", b"x")
    names, marker = [], None
    while True:
        params = {"usemarker": "true", "limit": 2, **({"marker": marker} if marker else {})}
        page = http.get(f"{fake.url}/2.0/folders/{folder}/items", params=params).json()
        names += [e["name"] for e in page["entries"]]
        marker = page["next_marker"]
        if not marker:
            break
    assert names == [f"n{i}" for i in range(5)]
    page = http.get(f"{fake.url}/2.0/folders/{folder}/items", params={"offset": 4, "limit": 2}).json()
    assert page["total_count"] == 5 and [e["name"] for e in page["entries"]] == ["n4"]
    assert "size" not in page["entries"][0], "without fields only the mini representation comes back"


class TestChunkedSessions:
    def start(self, fake, http, folder, size: int) -> dict:
        response = http.post(f"{fake.url}/api/2.0/files/upload_sessions",
                             json={"folder_id": folder, "file_size": size, "file_name": "big.mov"})
        assert response.status_code == 201
        return response.json()

    def test_it_points_session_endpoints_at_itself(self, fake, http, folder) -> None:
        session = self.start(fake, http, folder, 2500)
        assert session["part_size"] == PART and session["total_parts"] == 3
        for url in session["session_endpoints"].values():
            assert url.startswith(f"{fake.url}/api/2.0/files/upload_sessions/{session['id']}")

    def test_it_rejects_a_part_whose_digest_does_not_match(self, fake, http, folder) -> None:
        session = self.start(fake, http, folder, 2500)
        data = os.urandom(PART)
        response = http.put(session["session_endpoints"]["upload_part"], data=data,
                            headers={"Content-Range": f"bytes 0-{PART - 1}/2500", "Digest": sha(b"other")})
        assert response.status_code == 400
        assert response.json()["code"] == "digest_mismatch"

    def test_it_rejects_a_part_not_aligned_to_the_part_size(self, fake, http, folder) -> None:
        session = self.start(fake, http, folder, 2500)
        data = os.urandom(100)
        response = http.put(session["session_endpoints"]["upload_part"], data=data,
                            headers={"Content-Range": "bytes 5-104/2500", "Digest": sha(data)})
        assert response.status_code == 416

    def test_it_checks_the_whole_file_digest_on_commit(self, fake, http, folder) -> None:
        size = 2500
        data = os.urandom(size)
        session = self.start(fake, http, folder, size)
        parts = []
        for offset in range(0, size, PART):
            chunk = data[offset:offset + PART]
            response = http.put(session["session_endpoints"]["upload_part"], data=chunk, headers={
                "Content-Range": f"bytes {offset}-{offset + len(chunk) - 1}/{size}", "Digest": sha(chunk)})
            assert response.status_code == 200
            part = response.json()["part"]
            assert part["sha1"] == hashlib.sha1(chunk).hexdigest()  # noqa: S324
            parts.append(part)
        commit = session["session_endpoints"]["commit"]
        wrong = http.post(commit, json={"parts": parts}, headers={"Digest": sha(data + b"!")})
        assert wrong.status_code == 400 and wrong.json()["code"] == "digest_mismatch"
        right = http.post(commit, json={"parts": parts}, headers={"Digest": sha(data)})
        assert right.status_code == 201
        entry = right.json()["entries"][0]
        assert entry["size"] == size and entry["sha1"] == hashlib.sha1(data).hexdigest()  # noqa: S324

    def test_it_refuses_a_session_below_the_minimum_size(self, http, folder) -> None:
        strict = BoxFakeServer().start()
        try:
            response = requests.post(f"{strict.url}/api/2.0/files/upload_sessions",
                                     headers={"Authorization": f"Bearer {strict.token}"},
                                     json={"folder_id": "0", "file_size": 1000, "file_name": "x"})
        finally:
            strict.stop()
        assert response.status_code == 400
        assert response.json()["code"] == "file_size_too_small"


def test_it_keeps_data_and_port_across_a_restart(fake, http, folder) -> None:
    fake.state.write_file(folder, "kept.jpg", b"kept")
    fake.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{fake.url}/2.0/folders/0", timeout=2)
    fake.start()
    deadline = time.monotonic() + 5
    while True:
        try:
            items = http.get(f"{fake.url}/2.0/folders/{folder}/items").json()
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert [e["name"] for e in items["entries"]] == ["kept.jpg"]
