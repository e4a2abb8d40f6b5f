"""A wedding backed up for real (watched folders, real RQ workers) for the scrub and drill tests."""

from __future__ import annotations

import datetime as dt
import os

from backups.ingest import wedding_import
from backups.models import BackupJob, Wedding
from backups.tasks import backup_start


def backed_up_wedding(tmp_path, run_workers, *, files: int = 3, name: str = "src") -> Wedding:
    src = tmp_path / name
    (src / "ceremony").mkdir(parents=True)
    for i in range(files):
        (src / "ceremony" / f"IMG_{i:04d}.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(2000 + i))
    wedding = wedding_import(path=src, couple=f"Ana & Ben {name}", date=dt.date(2025, 6, 1), country="US").wedding
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    return wedding
