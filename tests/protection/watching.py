"""Helpers for the watched-source tests: polling with a deadline, critical weddings on disk, watcher processes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from backups.ingest import wedding_import
from backups.models import Asset, BackupJob, Replica, Wedding
from protection.watcher import SourceWatcher

ROOT = Path(__file__).resolve().parents[2]


def wait_until(check: Callable[[], object], *, timeout: float, what: str, every: float = 0.1,
               between: Callable[[], None] | None = None) -> object:
    """Poll ``check`` until it is truthy (calling ``between`` each time, e.g. a watcher's step); TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        if between is not None:
            between()
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(every)


def holds_for(check: Callable[[], object], *, seconds: float, what: str, every: float = 0.1) -> None:
    """``check`` stays truthy for the whole time (a claim that nothing happens can only be watched for a while)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), f"{what}: stopped holding"
        time.sleep(every)


def photo(seed: int, size: int = 30_000) -> bytes:
    return b"\xff\xd8\xff" + os.urandom(size) + seed.to_bytes(4, "big")


def critical_wedding(tmp_path: Path, *, files: int = 2, name: str = "src", date: dt.date | None = None) -> Wedding:
    """A wedding happening today (wedding-day critical), catalogued from a folder of ``files`` photos."""
    src = tmp_path / name
    (src / "ceremony").mkdir(parents=True)
    for i in range(files):
        (src / "ceremony" / f"IMG_{i:04d}.jpg").write_bytes(photo(i))
    return wedding_import(path=src, couple=f"Ana & Ben {name}", date=date or timezone.localdate(),
                          country="US").wedding


def asset_of(wedding: Wedding, rel: str) -> Asset | None:
    return Asset.objects.filter(wedding=wedding, relative_path=rel).first()


def verified_everywhere(wedding: Wedding, rel: str, providers: list) -> bool:
    asset = asset_of(wedding, rel)
    if asset is None:
        return False
    done = set(Replica.objects.filter(asset=asset, status=Replica.Status.VERIFIED, sha256=asset.sha256)
               .values_list("provider_id", flat=True))
    return done >= {p.pk for p in providers}


def stepping(watcher: SourceWatcher, run_workers=None) -> Callable[[], None]:
    """One watcher pass, then (if given) the workers until the queues are empty."""
    def step() -> None:
        watcher.step()
        if run_workers is not None and BackupJob.objects.filter(status=BackupJob.Status.QUEUED).exists():
            run_workers()
    return step


def watcher_env(**overrides: str) -> dict[str, str]:
    """A watcher process on this test's database and Redis, with short periods so tests are quick."""
    db = connection.settings_dict
    return {
        **os.environ, "DJANGO_SETTINGS_MODULE": "wedbackup.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.RQ_QUEUES["default"]["URL"], "SECRET_KEY": settings.SECRET_KEY,
        "WEDBACKUP_CREDENTIALS_KEY": ",".join(settings.CREDENTIALS_KEYS),
        "WEDBACKUP_ENCRYPTION_KEY": settings.ENCRYPTION_MASTER_KEY, "WEDBACKUP_INBOX_ROOT": "",
        "WEDBACKUP_WATCH_QUIET_SECONDS": "0.5", "WEDBACKUP_WATCH_REFRESH_SECONDS": "0.5",
        "WEDBACKUP_WATCH_LEASE_SECONDS": "3", "WEDBACKUP_WATCH_RESCAN_SECONDS": "60", "LOG_LEVEL": "INFO",
        **overrides,
    }


class WatcherProcess:
    """``manage.py watch_sources`` as its own process (its own session, so -9 reaches nothing else)."""

    def __init__(self, tmp_path: Path, owner: str, **env: str):
        self.owner, self.log = owner, tmp_path / f"watcher-{owner}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "watch_sources", "--owner", owner],
                                         cwd=ROOT, env=watcher_env(**env), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """A power cut: SIGKILL, no clean-up, leases left to expire."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
