"""Watched sources in real time: a real watchdog observer (inotify) in this process, real RQ workers, real targets
(SeaweedFS, the GCS emulator and Azurite; watched folders where the clouds add nothing to what is tested)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import django_rq
import pytest
from django.db import connection

from backups.ingest import wedding_rescan
from backups.models import Asset, BackupJob, Replica
from protection.watcher import LEASE_PREFIX, SourceWatcher
from tests.protection.watching import (
    asset_of,
    critical_wedding,
    photo,
    stepping,
    verified_everywhere,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)
QUIET = 1.0


@pytest.fixture
def watcher(settings, rq_queues):
    settings.WEDBACKUP_INBOX_ROOT = ""
    conn = django_rq.get_connection("default")
    for key in conn.scan_iter(f"{LEASE_PREFIX}:*"):
        conn.delete(key)
    made: list[SourceWatcher] = []

    def make(**kw) -> SourceWatcher:
        made.append(SourceWatcher(quiet=kw.pop("quiet", QUIET), refresh=kw.pop("refresh", 0.2),
                                  rescan=kw.pop("rescan", 60), lease=kw.pop("lease", 10), **kw))
        return made[-1]

    yield make
    for w in made:
        w.close()


def test_a_file_dropped_into_a_critical_weddings_folder_is_verified_on_every_target(
        tmp_path, cloud_providers, watcher, run_workers):
    wedding = critical_wedding(tmp_path)
    w = watcher()
    step = stepping(w, run_workers)
    wait_until(lambda: wedding.pk in w.weddings, timeout=10, what="the watcher takes the wedding on", between=step)
    # The catch-up rescan started the first backup; the new file comes after, with no button pressed.
    wait_until(lambda: verified_everywhere(wedding, "ceremony/IMG_0000.jpg", list(cloud_providers.values())),
               timeout=120, what="the catalogued files backed up", between=step)
    data = photo(99, 200_000)
    (Path(wedding.source_path) / "ceremony" / "IMG_0099.jpg").write_bytes(data)
    wait_until(lambda: verified_everywhere(wedding, "ceremony/IMG_0099.jpg", list(cloud_providers.values())),
               timeout=120, what="the dropped file verified on S3, GCS and Azure", between=step)
    asset = asset_of(wedding, "ceremony/IMG_0099.jpg")
    assert asset.sha256 == hashlib.sha256(data).hexdigest()
    assert asset.seen_complete_at is not None and asset.protected_at is not None
    assert asset.protected_at >= asset.seen_complete_at


def test_a_half_written_file_is_not_taken_until_it_is_complete(tmp_path, three_folder_providers, watcher,
                                                                run_workers):
    wedding = critical_wedding(tmp_path)
    w = watcher()
    step = stepping(w, run_workers)
    wait_until(lambda: wedding.pk in w.weddings, timeout=10, what="the watcher takes the wedding on", between=step)
    target = Path(wedding.source_path) / "ceremony" / "IMG_SLOW.jpg"
    pieces = [photo(i, 50_000) for i in range(8)]
    done = threading.Event()

    def write_slowly():  # every piece well within the quiet period: the file never settles while written
        with open(target, "wb") as fh:
            for piece in pieces:
                fh.write(piece)
                fh.flush()
                time.sleep(QUIET / 3)
        done.set()

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        while not done.is_set():  # 8 pieces x QUIET/3: the writer outlives the quiet period more than twice
            step()
            assert asset_of(wedding, "ceremony/IMG_SLOW.jpg") is None, "taken while still being written"
            time.sleep(0.05)
    finally:
        writer.join()
    whole = b"".join(pieces)
    wait_until(lambda: verified_everywhere(wedding, "ceremony/IMG_SLOW.jpg", three_folder_providers),
               timeout=60, what="the completed file backed up", between=step)
    assert asset_of(wedding, "ceremony/IMG_SLOW.jpg").sha256 == hashlib.sha256(whole).hexdigest()
    for provider in three_folder_providers:
        (stored,) = Path(provider.bucket).glob(f"weddings/{wedding.slug}/*/ceremony/IMG_SLOW.jpg")
        assert stored.read_bytes() == whole


def test_deletion_and_rename_mark_the_old_path_missing_and_keep_its_copies(tmp_path, three_folder_providers, watcher,
                                                                           run_workers):
    wedding = critical_wedding(tmp_path, files=3)
    w = watcher()
    step = stepping(w, run_workers)
    wait_until(lambda: all(verified_everywhere(wedding, f"ceremony/IMG_{i:04d}.jpg", three_folder_providers)
                           for i in range(3)), timeout=60, what="the first backup", between=step)
    src = Path(wedding.source_path) / "ceremony"
    (src / "IMG_0000.jpg").unlink()
    (src / "IMG_0001.jpg").rename(src / "IMG_0001-renamed.jpg")
    wait_until(lambda: verified_everywhere(wedding, "ceremony/IMG_0001-renamed.jpg", three_folder_providers),
               timeout=60, what="the renamed file backed up under its new name", between=step)
    wait_until(lambda: Asset.objects.filter(wedding=wedding, missing_since__isnull=False).count() == 2,
               timeout=30, what="both old paths marked missing", between=step)
    for rel in ("ceremony/IMG_0000.jpg", "ceremony/IMG_0001.jpg"):
        gone = asset_of(wedding, rel)
        assert gone.missing_since is not None
        assert Replica.objects.filter(asset=gone, status=Replica.Status.VERIFIED).count() == 3
        for provider in three_folder_providers:  # the copies stay: the backup may be the only one left
            assert list(Path(provider.bucket).glob(f"weddings/{wedding.slug}/*/{rel}"))
    assert asset_of(wedding, "ceremony/IMG_0002.jpg").missing_since is None


def test_an_unchanged_file_is_not_read_again(tmp_path, three_folder_providers):
    """/proc/self/io counts every byte this process reads: a rescan of an unchanged 24 MB wedding reads almost
    nothing (database replies only); a changed file of the same size is read again."""
    wedding = critical_wedding(tmp_path, files=0)
    big = Path(wedding.source_path) / "ceremony" / "VIDEO.mp4"
    big.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(24 * 1024 * 1024))
    first = wedding_rescan(wedding=wedding)
    assert first.added == ["ceremony/VIDEO.mp4"]
    connection.ensure_connection()
    examined: list[str] = []
    before = _bytes_read()
    again = wedding_rescan(wedding=wedding, on_file=examined.append)
    assert _bytes_read() - before < 1024 * 1024
    assert again.unchanged == ["ceremony/VIDEO.mp4"] and examined == ["ceremony/VIDEO.mp4"]
    with open(big, "r+b") as fh:  # same size, new bytes, new mtime
        fh.seek(100)
        fh.write(b"edited")
    before = _bytes_read()
    changed = wedding_rescan(wedding=wedding)
    assert _bytes_read() - before >= 24 * 1024 * 1024
    assert changed.changed == ["ceremony/VIDEO.mp4"]
    asset = asset_of(wedding, "ceremony/VIDEO.mp4")
    assert asset.source_mtime_ns == big.stat().st_mtime_ns and asset.protected_at is None


def test_a_file_too_recent_is_left_pending_by_a_rescan(tmp_path, db):
    wedding = critical_wedding(tmp_path, files=1)
    fresh = Path(wedding.source_path) / "ceremony" / "FRESH.jpg"
    fresh.write_bytes(photo(5))
    report = wedding_rescan(wedding=wedding, quiet_seconds=30)
    assert report.pending == ["ceremony/FRESH.jpg"] and not report.added
    assert asset_of(wedding, "ceremony/FRESH.jpg") is None
    report = wedding_rescan(wedding=wedding)
    assert report.added == ["ceremony/FRESH.jpg"]


def test_one_backup_at_a_time_and_one_more_for_files_taken_while_it_was_active(tmp_path, three_folder_providers,
                                                                                watcher, run_workers):
    wedding = critical_wedding(tmp_path, files=1)
    w = watcher(quiet=0.3)
    wait_until(lambda: BackupJob.objects.filter(wedding=wedding).exists(), timeout=10,
               what="the catch-up backup of the catalogued file", between=w.step)
    src = Path(wedding.source_path) / "ceremony"
    for i in range(20):
        (src / f"NEW_{i}.jpg").write_bytes(photo(100 + i))
        w.step()
    wait_until(lambda: Asset.objects.filter(wedding=wedding, relative_path__startswith="ceremony/NEW_").count() == 20,
               timeout=20, what="the 20 new files catalogued", between=w.step)
    assert BackupJob.objects.filter(wedding=wedding).count() == 1  # still queued: no pile-up
    run_workers()
    for _ in range(3):
        w.step()
    jobs = list(BackupJob.objects.filter(wedding=wedding).order_by("pk").values_list("status", flat=True))
    assert jobs == [BackupJob.Status.SUCCEEDED, BackupJob.Status.QUEUED]  # the one owed, once
    run_workers()
    assert all(verified_everywhere(wedding, a.relative_path, three_folder_providers) for a in wedding.assets.all())


def _bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_thousands_of_files_at_once_are_taken_in_batches_with_one_backup_queued(tmp_path, three_folder_providers,
                                                                                 watcher):
    wedding = critical_wedding(tmp_path, files=0)
    w = watcher(quiet=0.3, lease=60)  # ownership is tested elsewhere; a loaded CI box is slow to ingest
    wait_until(lambda: wedding.pk in w.weddings, timeout=10, what="the watcher takes the wedding on", between=w.step)
    card = Path(wedding.source_path) / "card"
    card.mkdir()
    for i in range(1500):
        (card / f"IMG_{i:05d}.jpg").write_bytes(b"\xff\xd8\xff" + i.to_bytes(4, "big"))
    wait_until(lambda: Asset.objects.filter(wedding=wedding).count() == 1500, timeout=120,
               what="1500 files dropped at once catalogued", between=w.step, every=0.05)
    wait_until(lambda: len(w.weddings[wedding.pk].tracker) == 0, timeout=30,  # nothing kept once taken
               what="the watcher forgets the files it took", between=w.step)
    assert BackupJob.objects.filter(wedding=wedding, status=BackupJob.Status.QUEUED).count() == 1
