"""Dropbox-specific behaviour the contract suite cannot express, on the HTTPS fake."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time

import pytest

from providers.backends.base import IntegrityError, ObjectNotFound, PermanentError, TransientError
from providers.backends.dropbox_case import folders_to_confirm
from tests.fakes.dropbox_routes import content_hash
from tests.fixtures.dropbox import (
    APP_KEY,
    APP_SECRET,
    PART_SIZE,
    REFRESH_TOKEN,
    TEAM_MEMBER,
    TEAM_NAMESPACE,
    TEAM_TOKEN,
)

USER_SPACE = "user:dbid:AAuser"


def put(backend, key: str, data: bytes):
    return backend.put(key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest())


def stored(fake, path: str, space: str = USER_SPACE):
    return fake.entries(space).get(path.lower())


def test_it_maps_wedding_keys_to_one_folder_per_wedding_and_back(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    keys = ["weddings/anna-ben/photo/2024/IMG_0001.jpg", "weddings/anna-ben/MANIFEST.json",
            "weddings/zoë/video/first dance.mov", ".wedbackup-probe/123"]
    for key in keys:
        put(backend, key, key.encode())
    root = backend.root
    assert stored(dropbox_fake, f"{root}/Wedding_anna-ben/photo/2024/IMG_0001.jpg").data == keys[0].encode()
    assert stored(dropbox_fake, f"{root}/Wedding_zoë/video/first dance.mov") is not None
    assert stored(dropbox_fake, f"{root}/.wedbackup-probe/123") is not None
    assert sorted(o.key for o in backend.list()) == sorted(keys)
    assert sorted(o.key for o in backend.list("weddings/")) == sorted(keys[:3])
    assert sorted(o.key for o in backend.list("weddings/anna")) == sorted(keys[:2])
    assert [o.key for o in backend.list("weddings/anna-ben/photo/")] == [keys[0]]
    assert backend.head(keys[1]).key == keys[1]


def test_it_refuses_keys_that_would_not_round_trip(make_dropbox_backend):
    backend = make_dropbox_backend()
    for key in ("Wedding_x/a.jpg", "wedding_x/a.jpg"):
        with pytest.raises(PermanentError, match="reserved"):
            put(backend, key, b"x")


def test_it_ignores_files_it_did_not_place(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    put(backend, "weddings/a/x.jpg", b"x")
    dropbox_fake.commit(USER_SPACE, f"{backend.root}/weddings/stray.jpg", b"stray", {})
    assert [o.key for o in backend.list()] == ["weddings/a/x.jpg"]


def test_it_reports_the_dropbox_content_hash_and_sends_it_with_every_part(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    data = os.urandom(2 * PART_SIZE + 10)
    info = put(backend, "weddings/a/big.mov", data)
    assert info.checksums == {"content_hash": content_hash(data)}
    sent = [c for c in dropbox_fake.calls if c.route.startswith("/2/files/upload")]
    assert [c.route.rsplit("/", 1)[-1] for c in sent] == ["start", "append_v2", "finish"]
    assert all(c.arg["content_hash"] for c in sent)
    assert sent[-1].arg["cursor"]["offset"] == 2 * PART_SIZE
    assert sent[-1].arg["commit"]["mode"] in ("overwrite", {".tag": "overwrite"})


def test_it_retries_throttling_after_the_retry_after_delay(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    dropbox_fake.inject("/2/files/upload", 429, retry_after=1)
    started = time.monotonic()
    info = put(backend, "weddings/a/x.jpg", b"after a pause")
    assert time.monotonic() - started >= 1.0
    assert info.size == 13
    assert len(dropbox_fake.calls_to("/2/files/upload")) == 2


def test_it_hands_a_long_retry_after_back_as_transient_without_waiting(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    dropbox_fake.inject("/2/files/upload", 429, retry_after=300)
    started = time.monotonic()
    with pytest.raises(TransientError, match="throttling"):
        put(backend, "weddings/a/x.jpg", b"x")
    assert time.monotonic() - started < 5
    assert len(dropbox_fake.calls_to("/2/files/upload")) == 1


def test_it_retries_5xx_then_gives_up_as_transient(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    dropbox_fake.inject("/2/files/upload", 503)
    assert put(backend, "weddings/a/x.jpg", b"x").size == 1
    dropbox_fake.inject("/2/files/upload", 500, times=10)
    with pytest.raises(TransientError):
        put(backend, "weddings/a/y.jpg", b"y")


def test_it_survives_a_lost_append_response(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    data = os.urandom(2 * PART_SIZE + 10)
    dropbox_fake.inject("/2/files/upload_session/append_v2", 503, after=True)
    info = put(backend, "weddings/a/big.mov", data)
    assert info.checksums == {"content_hash": content_hash(data)}
    assert stored(dropbox_fake, f"{backend.root}/Wedding_a/big.mov").data == data


def test_it_survives_a_lost_finish_response(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    data = os.urandom(PART_SIZE + 10)
    dropbox_fake.inject("/2/files/upload_session/finish", 503, after=True)
    info = put(backend, "weddings/a/big.mov", data)
    assert info.checksums == {"content_hash": content_hash(data)}
    with backend.open("weddings/a/big.mov") as fh:
        assert fh.read() == data


@pytest.mark.parametrize(("size", "route"), [(100, "upload"), (PART_SIZE + 100, "upload_session/start"),
                                             (PART_SIZE + 100, "upload_session/finish")])
def test_bytes_damaged_in_transit_are_refused_by_dropbox(make_dropbox_backend, dropbox_fake, size, route):
    backend = make_dropbox_backend()
    dropbox_fake.inject(f"/2/files/{route}", corrupt="request")
    with pytest.raises(IntegrityError, match="content_hash_mismatch"):
        put(backend, "weddings/a/x.jpg", os.urandom(size))
    assert backend.head("weddings/a/x.jpg") is None


def test_a_stored_content_hash_that_differs_is_deleted_and_refused(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    dropbox_fake.inject("/2/files/upload", corrupt="stored")
    with pytest.raises(IntegrityError, match="content_hash"):
        put(backend, "weddings/a/x.jpg", b"precious")
    assert stored(dropbox_fake, f"{backend.root}/Wedding_a/x.jpg") is None


def test_a_download_that_differs_from_its_content_hash_is_refused(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    put(backend, "weddings/a/x.jpg", b"precious bytes")
    dropbox_fake.inject("/2/files/download", corrupt="response")
    with pytest.raises(IntegrityError), backend.open("weddings/a/x.jpg") as fh:
        fh.read()


def test_it_acts_as_a_team_member_with_the_select_user_header(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend(credentials={"access_token": TEAM_TOKEN}, options={"team_member_id": TEAM_MEMBER})
    backend.ensure_root()
    put(backend, "weddings/a/x.jpg", b"team")
    calls = dropbox_fake.calls_to("/2/files/upload")
    assert [c.headers.get("dropbox-api-select-user") for c in calls] == [TEAM_MEMBER]
    assert stored(dropbox_fake, f"{backend.root}/Wedding_a/x.jpg", space=f"member:{TEAM_MEMBER}").data == b"team"
    assert stored(dropbox_fake, f"{backend.root}/Wedding_a/x.jpg") is None


def test_a_team_token_without_a_member_is_a_permanent_error(make_dropbox_backend):
    backend = make_dropbox_backend(credentials={"access_token": TEAM_TOKEN})
    with pytest.raises(PermanentError, match="Select-User"):
        put(backend, "weddings/a/x.jpg", b"x")


def test_it_writes_to_the_team_space_with_a_path_root(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend(credentials={"access_token": TEAM_TOKEN},
                                   options={"team_member_id": TEAM_MEMBER, "root_namespace_id": TEAM_NAMESPACE})
    backend.ensure_root()
    put(backend, "weddings/a/x.jpg", b"shared")
    header = dropbox_fake.calls_to("/2/files/upload")[0].headers["dropbox-api-path-root"]
    assert json.loads(header) == {".tag": "root", "root": TEAM_NAMESPACE}
    assert stored(dropbox_fake, f"{backend.root}/Wedding_a/x.jpg", space=f"ns:{TEAM_NAMESPACE}").data == b"shared"


def test_an_unknown_root_namespace_is_a_permanent_error(make_dropbox_backend):
    backend = make_dropbox_backend(credentials={"access_token": TEAM_TOKEN},
                                   options={"team_member_id": TEAM_MEMBER, "root_namespace_id": "999"})
    with pytest.raises(PermanentError, match="root_namespace_id"):
        put(backend, "weddings/a/x.jpg", b"x")


def test_it_authenticates_with_a_refresh_token(make_dropbox_backend, dropbox_fake):
    creds = {"refresh_token": REFRESH_TOKEN, "app_key": APP_KEY, "app_secret": APP_SECRET}
    backend = make_dropbox_backend(credentials=creds)
    assert put(backend, "weddings/a/x.jpg", b"x").size == 1
    assert len(dropbox_fake.calls_to("/oauth2/token")) == 1
    bad = make_dropbox_backend(credentials={**creds, "app_secret": "nope"})
    with pytest.raises(PermanentError, match="credentials"):
        put(bad, "weddings/a/x.jpg", b"x")


def test_a_full_account_is_a_permanent_error(make_dropbox_backend, dropbox_fake):
    backend = make_dropbox_backend()
    dropbox_fake.quota_bytes = 10
    with pytest.raises(PermanentError, match="full"):
        put(backend, "weddings/a/x.jpg", b"more than ten bytes")


def test_it_refuses_to_start_without_its_root_folder(make_dropbox_backend):
    backend = make_dropbox_backend(bucket="NotCreated")
    with pytest.raises(PermanentError, match="/NotCreated does not exist"):
        put(backend, "weddings/a/x.jpg", b"x")
    with pytest.raises(PermanentError, match="either"):
        make_dropbox_backend(options={"root": "/Other"})


def test_delete_never_removes_a_folder(make_dropbox_backend):
    backend = make_dropbox_backend()
    put(backend, "weddings/a/photo/x.jpg", b"x")
    backend.delete("weddings/a/photo")
    backend.delete("weddings/a")
    assert backend.head("weddings/a/photo/x.jpg") is not None


def test_it_shares_a_link_once_and_returns_the_same_link_again(make_dropbox_backend):
    backend = make_dropbox_backend()
    put(backend, "weddings/a/photo/x.jpg", b"x")
    url = backend.shared_link("weddings/a/photo/x.jpg")
    assert url.startswith("https://www.dropbox.com/scl/fi/")
    assert "/x.jpg?" in url
    assert backend.shared_link("weddings/a/photo/x.jpg") == url
    with pytest.raises(ObjectNotFound):
        backend.shared_link("weddings/a/photo/missing.jpg")


def test_it_rejects_unknown_options(make_dropbox_backend):
    with pytest.raises(PermanentError, match="unknown option"):
        make_dropbox_backend(options={"team_member": "x"})


def test_only_folders_below_the_root_that_path_display_spells_otherwise_are_confirmed():
    root = "/WedBackup"
    path = "/WedBackup/Wedding_a/photo/ceremony/IMG.JPG"
    assert folders_to_confirm(path, "/wedbackup/Wedding_a/photo/ceremony/IMG.JPG", root) == []
    assert folders_to_confirm(path, "/WedBackup/Wedding_a/Photo/Ceremony/IMG.JPG", root) == [
        ("/WedBackup/Wedding_a/photo", "photo"), ("/WedBackup/Wedding_a/photo/ceremony", "ceremony")]
    assert folders_to_confirm(path, None, root) == []
