"""sources_scan (what the schedules run for weddings that are not on their wedding day) and the inbox: real folders,
real database, real Redis and RQ workers on watched-folder targets."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import django_rq
import pytest

from backups.models import Asset, BackupJob, Wedding
from protection.inbox import descriptor_parse, inbox_scan
from protection.sources import source_problem, sources_scan, watched_weddings
from protection.watcher import LEASE_PREFIX, SourceWatcher
from tests.protection.watching import asset_of, critical_wedding, photo, verified_everywhere, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
OLD = dt.date(2025, 5, 1)
YAML = "couple: Zoë & Åsa\ndate: 2025-09-13\ncountry: us\ncity: Austin\nplan: standard\n"


@pytest.fixture
def inbox(tmp_path, settings):
    root = tmp_path / "incoming" / "inbox"
    root.mkdir(parents=True)
    settings.WEDBACKUP_INBOX_ROOT = str(root)
    settings.WEDBACKUP_WATCH_QUIET_SECONDS = 0
    return root


def drop(inbox: Path, name: str, descriptor: str, files: int = 2) -> Path:
    folder = inbox / name
    folder.mkdir()
    for i in range(files):
        (folder / f"IMG_{i}.jpg").write_bytes(photo(i))
    (folder / "wedding.yaml").write_text(descriptor)
    return folder


def test_a_scheduled_scan_takes_settled_files_leaves_fresh_ones_and_reports_a_vanished_folder(
        tmp_path, settings, three_folder_providers, rq_queues, run_workers):
    settings.WEDBACKUP_INBOX_ROOT = ""
    settings.WEDBACKUP_WATCH_QUIET_SECONDS = 30
    quiet = critical_wedding(tmp_path, files=1, name="standard", date=OLD)
    other = critical_wedding(tmp_path, files=1, name="saver", date=OLD)
    gone = critical_wedding(tmp_path, files=1, name="gone", date=OLD)
    Wedding.objects.filter(pk__in=[other.pk, gone.pk]).update(plan="cost-saver")
    today = critical_wedding(tmp_path, files=1, name="today")  # the watcher's, not the schedule's
    Path(gone.source_path).rename(tmp_path / "elsewhere")
    settled = Path(quiet.source_path) / "ceremony" / "SETTLED.jpg"
    settled.write_bytes(photo(7))
    settings.WEDBACKUP_WATCH_QUIET_SECONDS = 0  # as if the scan came long after it was written
    result = sources_scan(plan="standard")
    assert result["weddings"] == 1 and result["added"] == 1 and result["pending"] == 0
    assert result["backups_started"] == 1 and result["problems"] == {}
    settings.WEDBACKUP_WATCH_QUIET_SECONDS = 30
    (Path(quiet.source_path) / "ceremony" / "FRESH.jpg").write_bytes(photo(8))
    again = sources_scan(plan="standard")  # one file too fresh, and one backup already queued: no second one
    assert again["added"] == 0 and again["pending"] == 1 and again["backups_started"] == 0
    assert asset_of(quiet, "ceremony/SETTLED.jpg") and asset_of(quiet, "ceremony/FRESH.jpg") is None
    assert BackupJob.objects.filter(wedding=quiet, status=BackupJob.Status.QUEUED).count() == 1
    everything = sources_scan()
    assert everything["problems"] == {gone.slug: f"source folder {gone.source_path}: the folder is gone"}
    assert everything["weddings"] == 2  # standard and cost-saver; not today's (critical) nor the vanished one
    assert not Asset.objects.filter(wedding=gone, missing_since__isnull=False).exists()  # not "all deleted"
    assert source_problem(gone) == "the folder is gone" and source_problem(other) == ""
    assert {w.pk for w in watched_weddings(critical=True)} == {today.pk}
    run_workers()
    assert verified_everywhere(quiet, "ceremony/SETTLED.jpg", three_folder_providers)


def test_a_folder_dropped_into_the_inbox_becomes_a_wedding_and_is_backed_up(inbox, three_folder_providers,
                                                                            rq_queues, run_workers):
    drop(inbox, "zoe-asa", YAML)
    result = inbox_scan()
    wedding = Wedding.objects.get(couple="Zoë & Åsa")
    assert result == {"registered": [wedding.slug], "refused": {}, "problem": ""}
    assert (wedding.date, wedding.country, wedding.city, wedding.plan) == (dt.date(2025, 9, 13), "US", "Austin",
                                                                           "standard")
    assert wedding.source_path == str((inbox / "zoe-asa").resolve()) and wedding.watch_source
    assert inbox_scan()["registered"] == []  # registered once
    run_workers()
    for rel in ("IMG_0.jpg", "IMG_1.jpg", "wedding.yaml"):
        assert verified_everywhere(wedding, rel, three_folder_providers), rel


def test_a_second_folder_for_the_same_couple_and_date_never_takes_the_wedding_over(inbox, rq_queues):
    first = drop(inbox, "zoe-asa", YAML)
    inbox_scan()
    wedding = Wedding.objects.get()
    drop(inbox, "zoe-asa-second-shooter", YAML)  # same couple and date, same file names, other bytes
    result = inbox_scan()
    assert result["registered"] == [] and "already a wedding" in result["refused"]["zoe-asa-second-shooter"]
    wedding.refresh_from_db()
    assert wedding.source_path == str(first.resolve())
    assert not Asset.objects.filter(wedding=wedding, missing_since__isnull=False).exists()
    assert inbox_scan()["registered"] == []  # and it stays so on every scan, not flipping between the two


def test_a_bad_wedding_yaml_is_reported_once_and_retried_only_when_it_changes(inbox, rq_queues, caplog):
    folder = drop(inbox, "broken", "couple: [unclosed\n")
    drop(inbox, "no-date", "couple: A & B\ncountry: US\n")
    with caplog.at_level(logging.WARNING, logger="protection.inbox"):
        first = inbox_scan()
        second = inbox_scan()
    assert first["registered"] == [] and "not valid YAML" in first["refused"]["broken"]
    assert "missing: date" in first["refused"]["no-date"]
    assert second["refused"]["broken"] == "unchanged since it was refused"
    assert sum("not registered" in r.message for r in caplog.records) == 2  # once each, not once per scan
    assert not Wedding.objects.exists()
    (folder / "wedding.yaml").write_text("couple: C & D\ndate: 2025-01-02\ncountry: US\n")
    assert inbox_scan()["registered"] == [Wedding.objects.get(couple="C & D").slug]


def test_an_inbox_outside_the_import_roots_is_refused_with_a_clear_message(inbox, settings, tmp_path):
    settings.WEDBACKUP_IMPORT_ROOTS = [str(tmp_path / "somewhere-else")]
    drop(inbox, "zoe-asa", YAML)
    result = inbox_scan()
    assert result["registered"] == [] and not Wedding.objects.exists()
    assert result["problem"].startswith(f"the inbox {inbox} is refused: imports are allowed only inside ")
    assert "WEDBACKUP_IMPORT_ROOTS" in result["problem"]


def test_a_descriptor_gives_the_wedding_fields():
    assert descriptor_parse("couple: ' Ana & Ben '\ndate: 2026-06-20\ncountry: fr\ncity: Lyon\nplan: premium\n") == {
        "couple": "Ana & Ben", "date": dt.date(2026, 6, 20), "country": "FR", "city": "Lyon", "plan": "premium",
        "requires_ml_analysis": False}


@pytest.mark.parametrize(("text", "why"), [
    ("- a list\n", "expected a mapping"), ("couple: A\ndate: 2025-13-01\ncountry: US\n", "month must be in 1..12"),
    ("couple: A\ndate: 20 June\ncountry: US\n", "date must be YYYY-MM-DD"),
    ("couple: A\ndate: 2025-01-01\ncountry: USA\n", "two-letter"),
    ("couple: A\ndate: 2025-01-01\ncountry: US\nplan: gold\n", "plan must be one of"),
    ("couple: A\ndate: 2025-01-01\ncountry: US\nbudget: 3\n", "unknown field(s): budget"),
])
def test_descriptor_errors_say_what_is_wrong(text, why):
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")):
        descriptor_parse(text)


def test_the_watcher_registers_inbox_weddings_and_survives_a_bad_one(inbox, three_folder_providers, rq_queues,
                                                                      run_workers):
    conn = django_rq.get_connection("default")
    for key in conn.scan_iter(f"{LEASE_PREFIX}:*"):
        conn.delete(key)
    drop(inbox, "broken", "couple: [unclosed\n")
    watcher = SourceWatcher(quiet=0.3, refresh=0.2)
    try:
        wait_until(lambda: watcher.step() or True, timeout=1, what="one pass")
        drop(inbox, "good", "couple: E & F\ndate: 2025-03-04\ncountry: CA\n")
        wait_until(lambda: Wedding.objects.filter(couple="E & F").exists(), timeout=20,
                   what="the watcher registers the dropped wedding", between=watcher.step)
    finally:
        watcher.close()
    wedding = Wedding.objects.get(couple="E & F")
    assert BackupJob.objects.filter(wedding=wedding, status=BackupJob.Status.QUEUED).count() == 1
    run_workers()
    assert verified_everywhere(wedding, "IMG_0.jpg", three_folder_providers)
