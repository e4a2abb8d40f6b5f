"""The commands' progress helper: when a bar is wanted, what it shows, and a no-op when it is not."""

import os
from io import StringIO

from rich.console import Console

from tests.terminal import ANSI
from wedbackup.progress import CommandProgress, human_bytes, human_seconds, progress_wanted


def test_a_bar_is_wanted_only_on_two_terminals_without_json_or_no_progress():
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert progress_wanted(stdout=tty, stderr=tty, as_json=False, disabled=False)
            assert not progress_wanted(stdout=tty, stderr=tty, as_json=True, disabled=False)
            assert not progress_wanted(stdout=tty, stderr=tty, as_json=False, disabled=True)
            assert not progress_wanted(stdout=StringIO(), stderr=tty, as_json=False, disabled=False)
            assert not progress_wanted(stdout=tty, stderr=StringIO(), as_json=False, disabled=False)
            assert not progress_wanted(stdout=object(), stderr=tty, as_json=False, disabled=False)
    finally:
        os.close(master)
        os.close(slave)


def test_files_and_bytes_with_speed_on_a_terminal():
    screen = StringIO()
    console = Console(file=screen, force_terminal=True, width=140)
    with CommandProgress(show=True, description="restoring", with_bytes=True, console=console) as progress:
        progress.total(files=3, bytes_=3_000_000)
        for _ in range(3):
            progress.advance(bytes_=1_000_000)
    assert progress.shown
    text = ANSI.sub("", screen.getvalue())
    assert "━" in text and "restoring" in text and "3/3 files" in text and "3.0/3.0 MB" in text and "/s" in text


def test_a_count_without_bytes_and_a_poller_update():
    screen = StringIO()
    console = Console(file=screen, force_terminal=True, width=140)
    with CommandProgress(show=True, description="verifying", unit="replicas", console=console) as progress:
        progress.update(files_done=4, files_total=9)
        progress.update(files_done=9, files_total=9, status="verified")
    text = ANSI.sub("", screen.getvalue())
    assert "9/9 replicas" in text and "verified" in text


def test_nothing_is_drawn_when_not_shown():
    with CommandProgress(show=False, description="x", with_bytes=True) as progress:
        progress.total(files=1, bytes_=10)
        progress.advance(bytes_=10)
        progress.update(files_done=1, files_total=1, bytes_done=10, bytes_total=10)
    assert not progress.shown and progress.elapsed >= 0


def test_human_sizes_and_times():
    assert human_bytes(1_234_000_000) == "1.2 GB"
    assert (human_seconds(4.2), human_seconds(125), human_seconds(7300)) == ("4 s", "2 min 5 s", "2 h 1 min")
