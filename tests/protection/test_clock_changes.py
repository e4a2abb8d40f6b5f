"""Clock changes and wrong clocks: a camera card's future mtimes are not waited on for ever, a file with an old
mtime that is still being written is not taken early, the watcher's quiet period runs on the monotonic clock, and
alerts neither go quiet nor stay silent after the clock went back.
(Schedules after the clock moved: tests/protection/test_dispatch_faults.py.)"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import django_rq
import pytest
from django.utils import timezone

from backups.ingest import wedding_rescan
from backups.models import BackupPolicy
from backups.snapshots import weddings_refresh
from protection.alerts import alert_raise
from protection.checks import BELOW_POLICY_SEEN, alerts_check
from protection.models import Alert
from protection.sources import QuietTracker
from tests.factories import make_asset, make_wedding
from tests.protection.alerting import sent
from tests.protection.watching import asset_of, critical_wedding, photo

pytestmark = pytest.mark.django_db
DAY = 86400


@pytest.fixture
def one_copy_policy():
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers = 1, 1
    policy.save()
    return policy


class Clock:
    """A monotonic clock the test moves (the tracker's only notion of time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _set_mtime(path: Path, seconds_from_now: float) -> None:
    when = time.time() + seconds_from_now
    os.utime(path, (when, when))


def test_a_file_from_a_camera_with_a_clock_a_day_ahead_is_taken_after_the_quiet_period(tmp_path):
    root = tmp_path / "card"
    root.mkdir()
    (root / "IMG_1.jpg").write_bytes(photo(1))
    _set_mtime(root / "IMG_1.jpg", DAY)
    clock = Clock()
    tracker = QuietTracker(root, quiet=5, clock=clock)
    tracker.touch("IMG_1.jpg")
    assert tracker.due() == []
    clock.now += 4
    assert tracker.due() == []
    clock.now += 1
    assert tracker.due() == ["IMG_1.jpg"]


def test_a_rescan_takes_a_file_whose_mtime_is_in_the_future_at_once(tmp_path):
    wedding = critical_wedding(tmp_path, files=1)
    future = Path(wedding.source_path) / "ceremony" / "FUTURE.jpg"
    future.write_bytes(photo(7))
    _set_mtime(future, 30 * DAY)  # the clock went back, or the camera's is wrong: waiting could take a month
    report = wedding_rescan(wedding=wedding, quiet_seconds=60)
    assert report.added == ["ceremony/FUTURE.jpg"] and not report.pending


def test_a_file_with_an_old_mtime_still_being_written_is_not_taken_early_by_the_watcher(tmp_path):
    root = tmp_path / "card"
    root.mkdir()
    path = root / "MVI_1.mp4"
    path.write_bytes(b"a" * 5000)
    camera = time.time() - 365 * DAY
    os.utime(path, (camera, camera))  # a copy tool that keeps the camera's (old) mtime
    clock = Clock()
    tracker = QuietTracker(root, quiet=5, clock=clock)
    tracker.touch("MVI_1.mp4")
    assert tracker.due() == []
    clock.now += 4
    with open(path, "r+b") as out:  # rewritten in place, same size, the old mtime put back
        out.write(b"b" * 5000)
    os.utime(path, (camera, camera))
    assert tracker.due() == []  # changed: the quiet period starts again
    clock.now += 4
    assert tracker.due() == []
    clock.now += 1
    assert tracker.due() == ["MVI_1.mp4"]


def test_a_rescan_leaves_a_just_written_file_with_an_old_mtime_pending(tmp_path):
    wedding = critical_wedding(tmp_path, files=1)
    old = Path(wedding.source_path) / "ceremony" / "OLD.jpg"
    old.write_bytes(photo(8))
    _set_mtime(old, -365 * DAY)  # its mtime says a year ago; it changed just now (its ctime says so)
    report = wedding_rescan(wedding=wedding, quiet_seconds=3600)
    assert report.pending == ["ceremony/OLD.jpg"] and asset_of(wedding, "ceremony/OLD.jpg") is None
    assert wedding_rescan(wedding=wedding).added == ["ceremony/OLD.jpg"]


def test_an_open_alert_last_sent_in_the_future_repeats_now_not_when_the_clock_catches_up(channels):
    got, _ = channels
    alert_raise(key="provider_down:4", kind=Alert.Kind.PROVIDER_DOWN, subject="p4 down")
    Alert.objects.filter(key="provider_down:4").update(last_sent_at=timezone.now() + dt.timedelta(days=2))
    alert_raise(key="provider_down:4", kind=Alert.Kind.PROVIDER_DOWN, subject="p4 down")  # the clock went back
    alert_raise(key="provider_down:4", kind=Alert.Kind.PROVIDER_DOWN, subject="p4 down")
    assert sent(got, "provider_down:4") == ["opened", "still open"]  # once, then at the interval again


def test_a_wedding_below_policy_is_alerted_after_the_clock_went_back(channels, one_copy_policy):
    got, _ = channels
    conn = django_rq.get_connection("default")
    conn.delete(BELOW_POLICY_SEEN)
    real = timezone.now()
    wedding = make_wedding()
    make_asset(wedding, seen_complete_at=real)  # stamped before the clock went back a day
    weddings_refresh([wedding.pk])
    key = f"below_policy:{wedding.pk}"
    alerts_check(now=real)
    back = real - dt.timedelta(days=1)
    alerts_check(now=back)
    alerts_check(now=back + dt.timedelta(minutes=61))  # an hour below policy by the clock as it is now
    assert sent(got, key) == ["opened"]
    conn.delete(BELOW_POLICY_SEEN)
