"""A disk that fills, for real: a tiny tmpfs under the places the engine writes (a watched-folder provider's root, a
restore target, the thumbnails). A full file system gives a clear error, leaves no partial file under a final name,
marks nothing verified, raises an alert, and the next run after space is freed completes."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from backups.ingest import wedding_import, wedding_rescan
from backups.models import Asset, BackupJob, BackupPolicy, Replica
from backups.restore import wedding_restore
from backups.tasks import backup_start
from backups.thumbnails import thumbnail_path
from protection.checks import alerts_check
from protection.models import Alert
from providers.backends.watched_folder import META_DIR, TMP_PREFIX
from providers.health import health_check_all
from providers.models import Provider
from tests.factories import make_provider
from tests.providers.conftest import breakers  # noqa: F401 (breakers under this test's own prefix)

pytestmark = pytest.mark.django_db(transaction=True)
FILE = 700 * 1024  # three of them do not fit in 2 MiB


@pytest.fixture
def small_disk(tmp_path):
    """mount(name, size) -> a fresh tmpfs of that size; resize(path, size). Unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (a real file system that fills)")
    mounted: list[Path] = []

    def mount(name: str, size: str = "2m") -> Path:
        point = tmp_path / name
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here (root without CAP_SYS_ADMIN?): {done.stderr.strip()}")
        mounted.append(point)
        return point

    def resize(point: Path, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(point)], check=True, capture_output=True)

    yield mount, resize
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _photo(seed: int) -> bytes:
    """A real JPEG (so ingest makes a thumbnail) padded with random bytes after its end marker."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (seed * 40 % 256, 90, 160)).save(out, "JPEG")
    return out.getvalue() + os.urandom(FILE - out.tell())


def _wedding(tmp_path: Path, files: int = 3):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(files):
        (src / f"IMG_{i:04d}.jpg").write_bytes(_photo(i))
    return wedding_import(path=src, couple="Ana & Ben", date=dt.date(2025, 6, 1), country="US").wedding


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if p.name.startswith((TMP_PREFIX, ".restore-", ".thumb-"))]


@pytest.mark.usefixtures("breakers")
def test_a_full_provider_folder_fails_cleanly_alerts_and_the_next_backup_completes(small_disk, tmp_path,
                                                                                   run_workers, settings):
    mount, resize = small_disk
    full = mount("nas")
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers = 2, 1
    policy.save()
    make_provider(name="roomy", kind="watched_folder", bucket=str(tmp_path / "roomy"), options={"create": True})
    small = make_provider(name="small", kind="watched_folder", bucket=str(full), options={"create": True})
    wedding = _wedding(tmp_path)
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status in (BackupJob.Status.PARTIAL, BackupJob.Status.FAILED), job.status
    assert "disk full" in job.error_summary, job.error_summary  # says what is wrong, not just "error"
    on_small = {r.asset.relative_path: r for r in Replica.objects.filter(provider=small).select_related("asset")}
    failed = [p for p, r in on_small.items() if r.status != Replica.Status.VERIFIED]
    assert failed, "three files of 700 KiB cannot all fit in 2 MiB"
    assert _leftovers(full) == []  # no temporary file left behind
    for path, replica in on_small.items():  # every file under its final name is complete; the failed have none
        stored = next((p for p in full.rglob(Path(path).name) if META_DIR not in p.parts), None)
        if replica.status == Replica.Status.VERIFIED:
            assert stored is not None and hashlib.sha256(stored.read_bytes()).hexdigest() == replica.asset.sha256
        else:
            assert stored is None, f"{path}: a partial file under its final name"
    assert Asset.objects.filter(wedding=wedding, protected_at__isnull=True).count() == len(failed)

    alerts_check()
    alert = Alert.objects.get(key=f"job_failed:{wedding.pk}:backup", resolved_at__isnull=True)
    assert "disk full" in alert.detail
    small.refresh_from_db()  # the folder kept failing: its breaker took it out, and that is an alert too
    assert small.status == Provider.Status.DOWN
    assert Alert.objects.filter(key=f"provider_down:{small.pk}", resolved_at__isnull=True).exists()

    resize(full, "8m")  # space freed
    settings.WEDBACKUP_BREAKER_COOLDOWN = 0
    health_check_all()  # the probe writes there again: the provider is back
    small.refresh_from_db()
    assert small.status == Provider.Status.ACTIVE
    again = backup_start(wedding=wedding)
    run_workers()
    again.refresh_from_db()
    assert again.status == BackupJob.Status.SUCCEEDED, again.error_summary
    assert not Replica.objects.filter(asset__wedding=wedding).exclude(status=Replica.Status.VERIFIED).exists()
    assert not Asset.objects.filter(wedding=wedding, protected_at__isnull=True).exists()
    alerts_check()
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert not Alert.objects.filter(key=f"provider_down:{small.pk}", resolved_at__isnull=True).exists()
    assert _leftovers(full) == []


def test_a_full_restore_target_keeps_no_partial_file_and_a_retry_after_freeing_space_restores_all(
        small_disk, tmp_path, run_workers, three_folder_providers):
    mount, resize = small_disk
    wedding = _wedding(tmp_path)
    backup_start(wedding=wedding)
    run_workers()
    target = mount("restore", "1m")
    report = wedding_restore(wedding=wedding, to=target)
    assert report.failed and all("No space left on device" in why for why in report.failed.values())
    assert _leftovers(target) == []
    for path in report.restored:  # what was restored is whole
        asset = Asset.objects.get(wedding=wedding, relative_path=path)
        assert hashlib.sha256((target / path).read_bytes()).hexdigest() == asset.sha256
    for path in report.failed:
        assert not (target / path).exists(), f"{path}: a partial file under its final name"
    resize(target, "8m")
    again = wedding_restore(wedding=wedding, to=target)
    assert not again.failed and len(again.restored) == 3
    for asset in Asset.objects.filter(wedding=wedding):
        assert hashlib.sha256((target / asset.relative_path).read_bytes()).hexdigest() == asset.sha256


def test_a_full_thumbnail_disk_does_not_stop_ingest_and_the_thumbnails_come_once_there_is_space(
        small_disk, tmp_path, settings):
    mount, _ = small_disk
    thumbs = mount("thumbs", "1m")
    settings.WEDBACKUP_THUMB_DIR = str(thumbs)
    filler = thumbs / "filler"
    with open(filler, "wb") as out, pytest.raises(OSError):  # fill it to the last block
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    wedding = _wedding(tmp_path)
    assets = list(Asset.objects.filter(wedding=wedding))
    assert len(assets) == 3  # catalogued all the same: a thumbnail is not worth a missed backup
    assert _leftovers(thumbs) == []
    assert not any(thumbnail_path(sha256=a.sha256).exists() for a in assets)
    assert not any(thumbnail_path(sha256=a.sha256).with_suffix(".none").exists() for a in assets)  # not given up
    filler.unlink()
    wedding_rescan(wedding=wedding)  # the next scan makes them
    assert all(thumbnail_path(sha256=a.sha256).is_file() for a in assets)


def test_a_full_temporary_disk_under_a_stand_in_copy_says_so_and_the_next_repair_completes(
        small_disk, tmp_path, run_workers, three_folder_providers, monkeypatch):
    mount, resize = small_disk
    wedding = _wedding(tmp_path)
    backup_start(wedding=wedding)
    run_workers()
    asset = Asset.objects.filter(wedding=wedding).order_by("relative_path").first()
    (Path(wedding.source_path) / asset.relative_path).unlink()  # the card was formatted: only the copies remain
    lost = Replica.objects.get(asset=asset, provider__name="folder-1")
    stored = Path(lost.provider.bucket) / lost.object_key
    stored.unlink()
    Replica.objects.filter(pk=lost.pk).update(status=Replica.Status.FAILED, last_error="scrub: gone")
    temp = mount("temp", "512k")  # a stand-in copy of 700 KiB cannot be written here
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    job = backup_start(wedding=wedding, kind=BackupJob.Kind.REPAIR)
    run_workers()
    lost.refresh_from_db()
    job.refresh_from_db()
    assert lost.status != Replica.Status.VERIFIED and not stored.exists()
    assert "No space left on device" in lost.last_error, lost.last_error  # the reason, not "file gone"
    assert list(temp.iterdir()) == []  # the stand-in's temporary folder is gone
    resize(temp, "8m")
    again = backup_start(wedding=wedding, kind=BackupJob.Kind.REPAIR)
    run_workers()
    again.refresh_from_db()
    lost.refresh_from_db()
    assert again.status == BackupJob.Status.SUCCEEDED, again.error_summary
    assert lost.status == Replica.Status.VERIFIED
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == asset.sha256
    assert list(temp.iterdir()) == []
