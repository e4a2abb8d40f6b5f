"""bench/backup.py's real-size wedding (issue 18 item 3): the folder, the re-scan of the unchanged wedding,
and one target throttled through the fault proxy while the engine backs up the two videos.

Django must be set up (``engine_run`` does it) before ``rescan_check`` or ``throttled_run`` are called.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from _servers import MB, write_random_file

PHOTOS = 2998
VIDEOS = (1024 * MB, 1792 * MB)  # 1 GiB and 1.75 GiB
TOTAL = 10 * 1024 * MB  # about 10 GB in 3,000 files


def real_wedding_folder(root: Path, scale: float) -> tuple[int, int]:
    """2,998 photos and two videos of 1 and 1.75 GiB, about 10 GiB in all (``scale`` multiplies every size)."""
    photo = max(1, int((TOTAL - sum(VIDEOS)) / PHOTOS * scale))
    videos = [max(1, int(v * scale)) for v in VIDEOS]
    for i in range(PHOTOS):
        write_random_file(root / "photos" / f"{['ceremony', 'reception', 'portraits'][i % 3]}" / f"IMG_{i + 1:04d}.jpg",
                          photo)
    for i, size in enumerate(videos):
        write_random_file(root / "video" / f"film_{i + 1}.mp4", size)
    return PHOTOS + len(videos), PHOTOS * photo + sum(videos)


def rchar() -> int:
    """Bytes this process has read with read() and its kin (/proc/self/io), as the watched-source test counts."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise SystemExit("no rchar in /proc/self/io")


def rescan_check(wedding) -> dict:
    """Re-scan the unchanged wedding as the watcher does: the bytes this process read meanwhile through read()
    (files, Pillow's included; libpq and redis-py read their sockets with recv, which rchar leaves out) and what
    a new round would plan (0)."""
    from backups.ingest import wedding_rescan
    from backups.models import BackupJob
    from backups.planning import plan_round

    before, started = rchar(), time.perf_counter()
    report = wedding_rescan(wedding=wedding)
    seconds, read = time.perf_counter() - started, rchar() - before
    job = BackupJob.objects.create(wedding=wedding, queue="default")
    plan = plan_round(job)
    job.delete()
    return {"seconds": seconds, "bytes_read": read, "wedding_bytes": sum(wedding.assets.values_list("size", flat=True)),
            "unchanged": len(report.unchanged), "taken": report.taken, "planned": plan.uploads}


def throttled_run(folder: Path, workdir: Path, servers, providers: list, *, throttle_bps: int, timeout: float) -> dict:
    """The two videos as a wedding of their own (hard links: no more disk), backed up by the running workers
    with the first provider behind the fault proxy trickling request bodies at ``throttle_bps`` (0: through the
    same proxy at full speed, the baseline). Seconds from backup_start to each provider's last verified copy:
    the others must not wait for the throttled one."""
    from django.utils import timezone

    from backups.ingest import wedding_import
    from backups.models import BackupJob, Replica
    from backups.tasks import backup_start
    from providers.backends import backend_for
    from providers.models import Provider
    from tests.faults.proxy import FaultProxy  # the project root is on sys.path (_servers)

    videos = workdir / f"videos-{throttle_bps}"
    (videos / "video").mkdir(parents=True)
    for path in sorted((folder / "video").iterdir()):
        os.link(path, videos / "video" / path.name)
    report = wedding_import(path=videos, couple=f"Slow & Steady {throttle_bps}",
                            date=dt.date.today() - dt.timedelta(days=30), country="US")
    slow = providers[0]
    seaweed = servers.seaweedfs()
    original = slow.endpoint
    with FaultProxy(seaweed.port, seed=18) as proxy:
        Provider.objects.filter(pk=slow.pk).update(endpoint=proxy.url, updated=timezone.now())
        proxy.set(upload_bps=throttle_bps or None)
        started_at, started = timezone.now(), time.perf_counter()
        job = backup_start(wedding=report.wedding)
        done = {BackupJob.Status.SUCCEEDED, BackupJob.Status.PARTIAL, BackupJob.Status.FAILED}
        while job.status not in done:
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"the throttled backup did not finish within {timeout}s")
            time.sleep(0.2)
            job.refresh_from_db()
        wall = time.perf_counter() - started
    Provider.objects.filter(pk=slow.pk).update(endpoint=original, updated=timezone.now())
    # When each copy was committed, as its server says (verified_at is written once all of an asset's
    # targets have ended, so it cannot tell a fast target from a slow one).
    last: dict[str, dt.datetime] = {}
    for r in Replica.objects.filter(asset__wedding=report.wedding, status=Replica.Status.VERIFIED) \
            .select_related("provider"):
        modified = backend_for(r.provider).head(r.object_key).modified
        last[r.provider.name] = max(last.get(r.provider.name, modified), modified)
    return {"status": job.status, "wall_s": wall, "throttled": slow.name,
            "verified": Replica.objects.filter(asset__wedding=report.wedding, status="verified").count(),
            "last_copy_s": {name: (t - started_at).total_seconds() for name, t in sorted(last.items())},
            "bytes": sum(p.stat().st_size for p in (videos / "video").iterdir())}
