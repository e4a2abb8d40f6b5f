"""The browser tests' wedding: a staff superuser, three watched-folder copies of every file, backed up by real
workers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from backups.ingest import wedding_import
from backups.models import BackupPolicy
from backups.tasks import backup_start
from tests.factories import make_provider
from tests.weddings import jpeg

PASSWORD = "browser-test-Password-1"


def nas_wedding_backed_up(*, tmp_path: Path, run_workers, user_model, photos: dict[str, tuple[int, int, int]]):
    """Ana & Ben's ceremony photos (a 640x480 JPEG of one colour per name) on nas-0..2, all verified."""
    user_model.objects.create_superuser("ops", "ops@studio.example", PASSWORD)
    policy = BackupPolicy.default()
    policy.min_copies, policy.min_distinct_providers = 3, 1
    policy.save()
    for i in range(3):
        make_provider(name=f"nas-{i}", kind="watched_folder", region="us-east-1", bucket=str(tmp_path / f"nas-{i}"),
                      options={"create": True})
    source = tmp_path / "source" / "ceremony"
    source.mkdir(parents=True)
    for name, colour in photos.items():
        (source / name).write_bytes(jpeg(640, 480, colour, "2026:05:02 15:00:00"))
    wedding = wedding_import(path=source.parent, couple="Ana & Ben", date=dt.date(2026, 5, 2), country="US").wedding
    backup_start(wedding=wedding)
    run_workers()
    return wedding


def log_in(page) -> None:
    page.goto("/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
