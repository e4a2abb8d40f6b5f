"""Ingest: kinds, EXIF, idempotent re-import, and a clear per-file report for bad input."""

import datetime as dt
import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from backups.ingest import detect_kind, scan_folder, wedding_import
from backups.models import Asset


def jpeg_with_exif(width=640, height=480, taken="2024:06:01 15:30:00") -> bytes:
    img = Image.new("RGB", (width, height), (200, 120, 90))
    exif = Image.Exif()
    exif[0x0132] = "2020:01:01 00:00:00"
    exif.get_ifd(0x8769)[0x9003] = taken
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "head", "kind"),
    [("a.jpg", b"\xff\xd8\xff\xe0", "photo"), ("a.CR3", b"\x00\x00\x00\x18ftypcrx ", "raw_photo"),
     ("a.nef", b"MM\x00*", "raw_photo"), ("clip.MOV", b"\x00\x00\x00\x14ftypqt  ", "video"),
     ("clip.mts", b"G@\x00", "video"), ("menu.pdf", b"%PDF-1.7", "document"), ("notes.txt", b"hello", "document"),
     ("photo.txt", b"\xff\xd8\xff\xe1", "photo"), ("data.bin", b"\x00\x01", "other"),
     ("speech.docx", b"PK\x03\x04", "document"), ("shot.heic", b"\x00\x00\x00\x18ftypheic", "photo")],
)
def test_kind_comes_from_content_first_then_the_extension(name, head, kind):
    assert detect_kind(name, head)[0] == kind


def test_dimensions_and_capture_time_come_from_exif(tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_with_exif(800, 600))
    (item,) = list(scan_folder(tmp_path))
    assert (item.width, item.height) == (800, 600)
    assert item.captured_at == dt.datetime(2024, 6, 1, 15, 30, tzinfo=dt.UTC)


def test_bad_entries_get_a_clear_report_and_never_a_crash(tmp_path):
    (tmp_path / "ok.jpg").write_bytes(jpeg_with_exif())
    (tmp_path / "zero.txt").write_bytes(b"")
    (tmp_path / "Zoë & Åsa ünïcødé.jpg").write_bytes(b"\xff\xd8\xff unicode")
    (tmp_path / "..dots..jpg").write_bytes(b"\xff\xd8\xff dots")
    (tmp_path / "link.jpg").symlink_to(tmp_path / "ok.jpg")
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "missing.jpg")
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "again").symlink_to(tmp_path / "loop")
    os.mkfifo(tmp_path / "pipe")
    long_dir = tmp_path
    for i in range(6):
        long_dir = long_dir / (f"{i}" * 200)
    long_dir.mkdir(parents=True)
    (long_dir / "deep.jpg").write_bytes(b"\xff\xd8\xff")
    results = {r.relative_path: r for r in scan_folder(tmp_path)}
    problems = {k: v.reason for k, v in results.items() if hasattr(v, "reason")}
    assert "symbolic link" in problems["link.jpg"]
    assert "symbolic link" in problems["dangling.jpg"]
    assert "not followed" in problems["loop/again"]
    assert problems["pipe"] == "not a regular file"
    assert any("longer than 1024 bytes" in why for why in problems.values())
    files = {k for k, v in results.items() if not hasattr(v, "reason")}
    assert files == {"ok.jpg", "zero.txt", "Zoë & Åsa ünïcødé.jpg", "..dots..jpg"}
    assert results["zero.txt"].size == 0


def test_a_name_that_is_not_utf8_is_reported(tmp_path):
    os.close(os.open(os.path.join(os.fsencode(tmp_path), b"bad-\xff.jpg"), os.O_CREAT | os.O_WRONLY))
    (problem,) = list(scan_folder(tmp_path))
    assert problem.reason == "file name is not valid UTF-8"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user for an unreadable file")
def test_an_unreadable_file_is_reported():
    """Root reads everything, so the scan runs in a forked child that has become user nobody."""
    with tempfile.TemporaryDirectory() as tmp:  # outside pytest's root-only tmp tree
        folder = Path(tmp)
        os.chmod(folder, 0o755)  # noqa: S103 - the unprivileged child must reach the folder
        (folder / "secret.jpg").write_bytes(b"\xff\xd8\xff")
        (folder / "fine.jpg").write_bytes(b"\xff\xd8\xff")
        os.chmod(folder / "secret.jpg", 0)
        found = _scan_as_nobody(folder)
    assert found == [["fine.jpg", "ok"], ["secret.jpg", "permission denied: the file cannot be read"]]


def _scan_as_nobody(folder: Path) -> list:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, scan, report, exit without running pytest's teardown
        try:
            os.setgid(65534)
            os.setuid(65534)
            found = sorted((r.relative_path, getattr(r, "reason", "ok")) for r in scan_folder(folder))
            os.write(write_end, json.dumps(found).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as fh:
        return json.loads(fh.read())


@pytest.mark.django_db
def test_reimport_is_idempotent_and_reports_changes_and_removals(tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_with_exif())
    (tmp_path / "b.pdf").write_bytes(b"%PDF-1.4 b")
    args = {"path": tmp_path, "couple": "Ana & Ben", "date": dt.date(2024, 6, 1), "country": "FR"}
    first = wedding_import(**args)
    assert sorted(first.added) == ["a.jpg", "b.pdf"]
    assert first.wedding.residency_zone == "EU"
    again = wedding_import(**args)
    assert (again.added, again.changed, again.removed, len(again.unchanged)) == ([], [], [], 2)
    assert again.wedding.pk == first.wedding.pk
    (tmp_path / "b.pdf").write_bytes(b"%PDF-1.4 b, edited")
    (tmp_path / "a.jpg").unlink()
    third = wedding_import(**args)
    assert third.changed == ["b.pdf"] and third.removed == ["a.jpg"]
    gone = Asset.objects.get(relative_path="a.jpg")
    assert gone.missing_since is not None  # kept: never silently deleted from providers


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        wedding_import(path=tmp_path / "nope", couple="x", date=dt.date(2024, 1, 1), country="US")
