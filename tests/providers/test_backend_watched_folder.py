"""What the contract suite cannot say about a watched folder: agent marker, escapes, leftovers, sidecars."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.backends import backend_from_config
from providers.backends.base import BackendConfig, IntegrityError, PermanentError, TransientError
from providers.backends.watched_folder import META_DIR, TMP_PREFIX, WatchedFolderBackend


def make(root: Path, **options: Any) -> WatchedFolderBackend:
    backend = backend_from_config(BackendConfig(name="nas", kind="watched_folder", bucket=str(root), options=options))
    assert isinstance(backend, WatchedFolderBackend)
    return backend


def put(backend: WatchedFolderBackend, key: str, data: bytes, **kwargs: Any):
    return backend.put(key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(), **kwargs)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "nas"
    path.mkdir()
    return path


# -- the backup agent's marker ----------------------------------------------------------------------
def test_it_probes_ok_when_the_agent_marker_is_fresh(root: Path) -> None:
    (root / ".carbonite-last-backup").write_text("done")
    probe = make(root, agent_marker=".carbonite-last-backup", agent_max_age_hours=24).probe()
    assert probe.ok, probe.error


def test_it_fails_the_probe_when_the_agent_marker_is_stale(root: Path, tmp_path: Path) -> None:
    marker = tmp_path / "agent" / "last-backup"
    marker.parent.mkdir()
    marker.write_text("done")
    thirty_hours_ago = time.time() - 30 * 3600
    os.utime(marker, (thirty_hours_ago, thirty_hours_ago))
    probe = make(root, agent_marker=str(marker), agent_max_age_hours=24).probe()
    assert not probe.ok
    assert str(marker) in probe.error
    assert "30.0 h old (limit 24 h)" in probe.error


def test_it_fails_the_probe_when_the_agent_marker_is_missing(root: Path) -> None:
    probe = make(root, agent_marker="never-written", agent_max_age_hours=24).probe()
    assert not probe.ok
    assert "missing" in probe.error
    assert str(root / "never-written") in probe.error


def test_it_ignores_the_marker_age_when_no_marker_is_configured(root: Path) -> None:
    assert make(root).probe().ok


def test_it_rejects_a_max_age_without_a_marker_and_unknown_options(root: Path) -> None:
    with pytest.raises(PermanentError, match="agent_marker"):
        make(root, agent_max_age_hours=24)
    with pytest.raises(PermanentError, match="unknown option"):
        make(root, agent=True)


# -- the root -----------------------------------------------------------------------------------------
def test_it_refuses_a_missing_root_without_creating_it(tmp_path: Path) -> None:
    root = tmp_path / "unmounted"
    backend = make(root)
    with pytest.raises(PermanentError, match=str(root)):
        put(backend, "a.jpg", b"x")
    with pytest.raises(PermanentError, match=str(root)):
        backend.head("a.jpg")
    assert not make(root).probe().ok
    assert not root.exists()


def test_it_creates_a_missing_root_when_asked(tmp_path: Path) -> None:
    root = tmp_path / "new" / "share"
    put(make(root, create=True), "a.jpg", b"x")
    assert (root / "a.jpg").read_bytes() == b"x"


# -- keys never escape the root --------------------------------------------------------------------
@pytest.mark.parametrize("key", ["../x", "/abs", "a/../b", "a/", f"{META_DIR}/a.jpg.json", f"a/{TMP_PREFIX}1"])
def test_it_rejects_keys_outside_the_plain_layout(root: Path, key: str) -> None:
    with pytest.raises(PermanentError):
        put(make(root), key, b"x")
    assert files_under(root.parent) == []


def test_it_does_not_follow_a_symlinked_folder_out_of_the_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (root / "link").symlink_to(outside, target_is_directory=True)
    backend = make(root)
    with pytest.raises(PermanentError, match="outside"):
        put(backend, "link/new.jpg", b"x")
    for call in (backend.open, backend.head, backend.delete):
        with pytest.raises(PermanentError, match="outside"):
            call("link/secret.txt")
    with pytest.raises(PermanentError, match="outside"):
        list(backend.list("link/"))
    assert [o.key for o in backend.list()] == []
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_it_does_not_write_through_a_symlinked_file(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "system.conf"
    target.write_text("keep me")
    (root / "photo.jpg").symlink_to(target)
    with pytest.raises(PermanentError, match="outside"):
        put(make(root), "photo.jpg", b"overwrite")
    assert target.read_text() == "keep me"


# -- failed puts leave nothing behind ----------------------------------------------------------------
def test_it_leaves_no_temp_files_after_a_failed_put(root: Path) -> None:
    backend = make(root)
    data = os.urandom(3 * 1024 * 1024)
    with pytest.raises(IntegrityError):
        backend.put("w/photo/a.jpg", io.BytesIO(data), len(data), sha256="0" * 64)
    with pytest.raises(IntegrityError):
        backend.put("w/photo/b.jpg", io.BytesIO(data[:-1]), len(data), sha256=hashlib.sha256(data).hexdigest())
    assert files_under(root) == []
    assert list(root.iterdir()) == []  # the folders the put created are gone too


def test_it_keeps_the_old_file_and_its_checksum_when_an_overwrite_fails(root: Path) -> None:
    backend = make(root)
    put(backend, "w/a.jpg", b"old")
    with pytest.raises(IntegrityError):
        backend.put("w/a.jpg", io.BytesIO(b"new"), 3, sha256="0" * 64)
    assert (root / "w" / "a.jpg").read_bytes() == b"old"
    assert backend.head("w/a.jpg").checksums == {"sha256": hashlib.sha256(b"old").hexdigest()}
    assert files_under(root) == [f"{META_DIR}/w/a.jpg.json", "w/a.jpg"]


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """A folder nobody may write to, root included (chattr +i), restored afterwards."""
    as_root = os.geteuid() == 0
    if as_root:
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        if done.returncode:
            pytest.skip(f"cannot make a read-only folder as root here: {done.stderr.decode().strip()}")
    else:
        folder.chmod(0o555)
    try:
        yield
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def test_it_reports_a_permission_error_as_permanent_with_the_path(root: Path) -> None:
    (root / "locked").mkdir()
    with read_only(root / "locked"), pytest.raises(PermanentError, match=f"permission denied on {root}/locked"):
        put(make(root), "locked/a.jpg", b"x")


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [(errno.ENOSPC, PermanentError, "disk full"), (errno.EROFS, PermanentError, "read-only"),
     (errno.ESTALE, TransientError, "on "), (errno.EIO, TransientError, "on ")],
)
def test_it_classifies_file_system_errors(root: Path, code: int, error: type, message: str) -> None:
    backend = make(root)
    with pytest.raises(error, match=message) as caught, backend._os_errors(root / "a.jpg"):
        raise OSError(code, os.strerror(code))
    assert str(root / "a.jpg") in str(caught.value)


# -- the hidden metadata tree ---------------------------------------------------------------------------
def test_it_keeps_metadata_in_a_hidden_tree_that_list_ignores(root: Path) -> None:
    backend = make(root)
    data = b"jpeg bytes"
    put(backend, "weddings/ann-bo/photo/a.jpg", data, content_type="image/jpeg", metadata={"camera": "X-T5"})
    sidecar = json.loads((root / META_DIR / "weddings/ann-bo/photo/a.jpg.json").read_text())
    assert sidecar["content_type"] == "image/jpeg"
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest()
    assert sidecar["metadata"] == {"camera": "X-T5"}
    assert sorted(p.name for p in (root / "weddings/ann-bo/photo").iterdir()) == ["a.jpg"]  # plain layout
    assert [o.key for o in backend.list()] == ["weddings/ann-bo/photo/a.jpg"]
    assert backend.head("weddings/ann-bo/photo/a.jpg").metadata == {"camera": "X-T5"}
    backend.delete("weddings/ann-bo/photo/a.jpg")
    assert list(root.iterdir()) == []


def test_it_drops_a_stale_checksum_when_the_file_changed_behind_its_back(root: Path) -> None:
    backend = make(root)
    put(backend, "a.jpg", b"original")
    (root / "a.jpg").write_bytes(b"restored by the agent")
    head = backend.head("a.jpg")
    assert head.size == len(b"restored by the agent")
    assert head.checksums == {}


def test_it_lists_lazily_in_key_order_and_skips_temp_files(root: Path) -> None:
    backend = make(root)
    for key in ["a/b.jpg", "a-c.jpg", "a/a/z.jpg", "b.jpg"]:
        put(backend, key, b"x")
    (root / "a" / f"{TMP_PREFIX}crashed").write_bytes(b"half")
    listing = backend.list()
    assert next(listing).key == "a-c.jpg"
    assert [o.key for o in listing] == ["a/a/z.jpg", "a/b.jpg", "b.jpg"]
    assert [o.key for o in backend.list("a/")] == ["a/a/z.jpg", "a/b.jpg"]
    assert [o.key for o in backend.list("a")] == ["a-c.jpg", "a/a/z.jpg", "a/b.jpg"]


def test_it_writes_files_the_backup_agent_can_read(root: Path) -> None:
    umask = os.umask(0o022)
    try:
        put(make(root), "a.jpg", b"x")
    finally:
        os.umask(umask)
    assert (root / "a.jpg").stat().st_mode & 0o777 == 0o644


def test_a_file_deleted_during_a_listing_is_left_out_not_an_error(tmp_path, monkeypatch):
    """A move or prune may delete a file between the folder being read and the file being looked at."""
    backend = backend_from_config(BackendConfig(name="nas", kind="watched_folder", bucket=str(tmp_path),
                                                options={"create": True}))
    for name in ("a.jpg", "b.jpg"):
        backend.put(f"weddings/x/{name}", io.BytesIO(b"x"), 1, sha256=hashlib.sha256(b"x").hexdigest())
    real_scandir = os.scandir

    def scandir_then_delete(path):
        entries = list(real_scandir(path))
        for entry in entries:
            if entry.name == "a.jpg":
                os.unlink(entry.path)
        return iter(entries)

    monkeypatch.setattr(os, "scandir", scandir_then_delete)
    assert [info.key for info in backend.list("weddings/")] == ["weddings/x/b.jpg"]
