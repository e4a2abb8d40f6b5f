"""manage.py watch_sources as its own process (real inotify events, real Redis leases), killed with -9 and run
twice at once; the backups themselves by real RQ workers on watched-folder targets."""

from __future__ import annotations

import django_rq
import pytest

from backups.models import BackupJob
from protection.leases import lease_owner
from protection.watcher import LEASE_PREFIX, lease_key
from tests.protection.watching import (
    WatcherProcess,
    asset_of,
    critical_wedding,
    holds_for,
    photo,
    verified_everywhere,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = 3  # seconds (watcher_env): how long a dead watcher's weddings wait for another


@pytest.fixture
def leases(rq_queues):
    conn = django_rq.get_connection("default")
    for key in conn.scan_iter(f"{LEASE_PREFIX}:*"):
        conn.delete(key)
    return conn


@pytest.fixture
def watchers(tmp_path):
    started: list[WatcherProcess] = []

    def start(owner: str) -> WatcherProcess:
        started.append(WatcherProcess(tmp_path, owner))
        return started[-1]

    yield start
    for w in started:
        w.stop()


def test_a_watcher_killed_with_sigkill_catches_up_when_started_again(tmp_path, three_folder_providers, leases,
                                                                     watchers, run_workers):
    wedding = critical_wedding(tmp_path, files=1)
    src = wedding.source_path + "/ceremony"
    first = watchers("first")
    wait_until(lambda: lease_owner(conn=leases, key=lease_key(wedding.pk)) == "first", timeout=60,
               what="the watcher owns the wedding")
    (tmp_path / "src" / "ceremony" / "LIVE.jpg").write_bytes(photo(1))
    wait_until(lambda: asset_of(wedding, "ceremony/LIVE.jpg"), timeout=30, what="the live file taken")
    first.kill()
    (tmp_path / "src" / "ceremony" / "WHILE_DEAD.jpg").write_bytes(photo(2))
    (tmp_path / "src" / "ceremony" / "IMG_0000.jpg").unlink()
    assert asset_of(wedding, "ceremony/WHILE_DEAD.jpg") is None, src
    watchers("second")  # the dead watcher's lease runs out; the new one takes the wedding and rescans
    wait_until(lambda: asset_of(wedding, "ceremony/WHILE_DEAD.jpg"), timeout=60,
               what="the file written while no watcher ran taken after the restart")
    wait_until(lambda: asset_of(wedding, "ceremony/IMG_0000.jpg").missing_since, timeout=10,
               what="the file deleted while no watcher ran marked missing")
    assert lease_owner(conn=leases, key=lease_key(wedding.pk)) == "second"
    run_workers()
    for rel in ("ceremony/LIVE.jpg", "ceremony/WHILE_DEAD.jpg"):
        assert verified_everywhere(wedding, rel, three_folder_providers), rel
    assert set(BackupJob.objects.filter(wedding=wedding).exclude(status=BackupJob.Status.QUEUED)
               .values_list("status", flat=True)) == {BackupJob.Status.SUCCEEDED}


def test_a_second_watcher_leaves_a_live_owners_wedding_and_takes_it_when_the_owner_dies(
        tmp_path, three_folder_providers, leases, watchers):
    wedding = critical_wedding(tmp_path, files=1)
    owner = watchers("owner")
    wait_until(lambda: lease_owner(conn=leases, key=lease_key(wedding.pk)) == "owner", timeout=60,
               what="the first watcher owns the wedding")
    spare = watchers("spare")
    wait_until(lambda: "watching sources as spare" in spare.output(), timeout=60, what="the second watcher runs")
    (tmp_path / "src" / "ceremony" / "ONE.jpg").write_bytes(photo(1))
    wait_until(lambda: asset_of(wedding, "ceremony/ONE.jpg"), timeout=30, what="the owner takes the file")
    # Over a whole lease time (several refreshes of the spare, renewals by the owner) the owner keeps it.
    holds_for(lambda: lease_owner(conn=leases, key=lease_key(wedding.pk)) == "owner", seconds=LEASE + 1,
              what="the live owner keeps its wedding")
    assert f"watching wedding {wedding.pk}" in owner.output()
    assert f"watching wedding {wedding.pk}" not in spare.output()
    owner.kill()
    wait_until(lambda: lease_owner(conn=leases, key=lease_key(wedding.pk)) == "spare", timeout=LEASE + 10,
               what="the spare takes the wedding once the dead owner's lease ran out")
    (tmp_path / "src" / "ceremony" / "TWO.jpg").write_bytes(photo(2))
    wait_until(lambda: asset_of(wedding, "ceremony/TWO.jpg"), timeout=30, what="the spare takes new files")
    assert f"watching wedding {wedding.pk}" in spare.output()
