"""Watched sources: a folder that vanished, and a wedding-day folder that went quiet (real folders on disk)."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from django.utils import timezone

from protection.checks import alerts_check
from protection.source_checks import folder_problem
from tests.factories import make_asset, make_wedding
from tests.protection.alerting import open_alert, repeat_due, sent

pytestmark = pytest.mark.django_db


def test_a_watched_folder_that_vanishes_alerts_repeats_and_resolves_when_it_is_back(channels, tmp_path):
    got, _ = channels
    folder = tmp_path / "ana-ben"
    folder.mkdir()
    wedding = make_wedding(couple="Ana & Ben", source_path=str(folder), watch_source=True)
    unwatched = make_wedding(source_path=str(tmp_path / "never-there"), watch_source=False)
    key = f"source_vanished:{wedding.pk}"
    alerts_check()
    assert open_alert(key) is None

    shutil.rmtree(folder)
    assert alerts_check()["source_vanished"] == 1
    alert = open_alert(key)
    assert "Ana & Ben" in alert.subject and "the folder is gone" in alert.detail and str(folder) in alert.detail
    assert open_alert(f"source_vanished:{unwatched.pk}") is None
    alerts_check()
    repeat_due(key)
    alerts_check()
    assert sent(got, key) == ["opened", "still open"]

    folder.mkdir()
    alerts_check()
    assert sent(got, key) == ["opened", "still open", "resolved"]


def test_what_makes_a_folder_unreadable(tmp_path):
    (tmp_path / "file.jpg").write_bytes(b"x")
    assert folder_problem(str(tmp_path)) == ""
    assert folder_problem(str(tmp_path / "file.jpg")) == "the path is not a folder"
    assert folder_problem(str(tmp_path / "gone")) == "the folder is gone"


@pytest.fixture
def noon():
    """Noon today, local time: the sweep judges the wedding day at this moment."""
    return timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time(12)))


def test_a_wedding_day_folder_that_stops_receiving_files_alerts_and_resolves_with_a_new_file(channels, tmp_path,
                                                                                            noon):
    got, _ = channels
    wedding = make_wedding(couple="Ivy & Jo", date=noon.date(), source_path=str(tmp_path), watch_source=True)
    make_asset(wedding, seen_complete_at=noon - dt.timedelta(hours=3))
    make_asset(wedding, seen_complete_at=noon - dt.timedelta(minutes=60))
    key = f"source_idle:{wedding.pk}"
    alerts_check(now=noon)
    assert open_alert(key) is None  # an hour without a file: under the 90 minute threshold

    alerts_check(now=noon + dt.timedelta(minutes=31))
    alert = open_alert(key)
    last = timezone.localtime(noon - dt.timedelta(minutes=60))
    assert f"no new file since {last:%H:%M}" in alert.subject and "Ivy & Jo" in alert.subject
    assert "91 minutes" in alert.detail
    alerts_check(now=noon + dt.timedelta(minutes=35))
    repeat_due(key)
    alerts_check(now=noon + dt.timedelta(minutes=36))
    assert sent(got, key) == ["opened", "still open"]

    make_asset(wedding, seen_complete_at=noon + dt.timedelta(minutes=37))
    alerts_check(now=noon + dt.timedelta(minutes=38))
    assert sent(got, key) == ["opened", "still open", "resolved"]


def test_only_a_wedding_day_with_files_earlier_that_day_can_go_quiet(channels, tmp_path, noon):
    yesterday_only = make_wedding(date=noon.date(), source_path=str(tmp_path), watch_source=True)
    make_asset(yesterday_only, seen_complete_at=noon - dt.timedelta(days=1))
    empty = make_wedding(date=noon.date(), source_path=str(tmp_path), watch_source=True)
    tomorrow = make_wedding(date=noon.date() + dt.timedelta(days=1), source_path=str(tmp_path), watch_source=True)
    make_asset(tomorrow, seen_complete_at=noon - dt.timedelta(hours=5))
    not_watched = make_wedding(date=noon.date(), source_path=str(tmp_path), watch_source=False)
    make_asset(not_watched, seen_complete_at=noon - dt.timedelta(hours=5))
    result = alerts_check(now=noon)
    assert result["source_idle"] == 0
    assert not any(open_alert(f"source_idle:{w.pk}") for w in (yesterday_only, empty, tomorrow, not_watched))


def test_a_vanished_wedding_day_folder_is_reported_once_as_vanished(channels, tmp_path, noon):
    wedding = make_wedding(date=noon.date(), source_path=str(tmp_path / "gone"), watch_source=True)
    make_asset(wedding, seen_complete_at=noon - dt.timedelta(hours=3))
    alerts_check(now=noon)
    assert open_alert(f"source_vanished:{wedding.pk}") is not None
    assert open_alert(f"source_idle:{wedding.pk}") is None
