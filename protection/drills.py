"""Restore drills: per provider, restore a random sample of its copies into a temporary folder through the restore
code path itself (``backups.restore.asset_restore_to``, the function ``restore_wedding`` runs for every file, with
that provider's copy as the only candidate), check the written files against the catalogue's size and sha256, and
record the result and the restore speed. A failed drill raises a ``DRILL_FAILED`` alert for the provider; a
passing one resolves it.

Archived copies (classes that need a paid rehydration) are never drawn. A drill only reads: nothing is marked
or repaired (a damaged copy found here is found again, and repaired, by the scrub), and it does not count as a
client's access for the cost model. One drill per provider at a time (a Redis lock); a drill a crash left
running is closed as interrupted, and its folder removed, by the provider's next drill.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import shutil
import tempfile
import time
from pathlib import Path

import django_rq
from django.conf import settings
from django.db.models import F, Max, Min
from django.utils import timezone
from redis.exceptions import LockError

from backups.models import Replica
from backups.restore import RestoreReport, asset_restore_to
from providers.backends import backend_class
from providers.models import Provider

from .alerts import alert_raise, alert_resolve
from .models import Alert, Drill

LOCK_KEY = "wedbackup:drill-lock:{pk}"
LOCK_SECONDS = 3600
FOLDER_PREFIX = "wedbackup-drill-{pk}-"
READ_CHUNK = 1024 * 1024
ALERT_PREFIX = "drill_failed:provider:"


def drill_files() -> int:
    """How many files a drill restores per provider (``WEDBACKUP_DRILL_FILES``, 5)."""
    return max(1, settings.WEDBACKUP_DRILL_FILES)


def drill_sample(*, provider: Provider, count: int, rng: random.Random | None = None) -> list[Replica]:
    """Up to ``count`` random verified, current, instantly readable copies on the provider: the first eligible copy
    at or after random points of the id range (a few index lookups, never a sort of the whole table)."""
    rng = rng or random.SystemRandom()
    eligible = (Replica.objects.filter(provider=provider, status=Replica.Status.VERIFIED, sha256=F("asset__sha256"))
                .exclude(storage_class__in=backend_class(provider.kind).archive_classes))
    bounds = eligible.aggregate(lo=Min("pk"), hi=Max("pk"))
    if bounds["lo"] is None:
        return []
    picked: list[int] = []
    for _ in range(count * 4):
        if len(picked) >= count:
            break
        rest = eligible.exclude(pk__in=picked).order_by("pk").values_list("pk", flat=True)
        pk = rest.filter(pk__gte=rng.randint(bounds["lo"], bounds["hi"])).first() or rest.first()
        if pk is None:
            break
        picked.append(pk)
    return list(Replica.objects.filter(pk__in=picked).select_related("provider", "asset__wedding").order_by("pk"))


def drills_run(*, sample: int | None = None) -> list[Drill]:
    """A drill on every enabled provider not marked down (a provider down is already an alert of its own)."""
    providers = Provider.objects.filter(enabled=True).exclude(status=Provider.Status.DOWN).order_by("name")
    return [drill_run(provider=provider, sample=sample) for provider in providers]


def drill_run(*, provider: Provider, sample: int | None = None) -> Drill:
    count = sample if sample is not None else drill_files()
    lock = django_rq.get_connection("default").lock(LOCK_KEY.format(pk=provider.pk), timeout=LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        running = Drill.objects.filter(provider=provider, finished_at__isnull=True).first()
        now = timezone.now()
        return running or Drill.objects.create(provider=provider, started_at=now, finished_at=now,
                                               detail="skipped: another drill of this provider is running")
    try:
        _tidy(provider)
        return _drill(provider=provider, count=count)
    finally:
        with contextlib.suppress(LockError):  # expired while we ran: nothing of ours to release
            lock.release()


def _drill(*, provider: Provider, count: int) -> Drill:
    drill = Drill.objects.create(provider=provider)
    replicas = drill_sample(provider=provider, count=count)
    if not replicas:
        drill.finished_at, drill.detail = timezone.now(), "nothing to restore: no verified, readable copy here"
        drill.save(update_fields=["finished_at", "detail"])
        return drill
    work = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX.format(pk=provider.pk), dir=drill_folder()))
    failures, restored_bytes, seconds = [], 0, 0.0
    report, backends = RestoreReport(), {}
    try:
        for n, replica in enumerate(replicas):
            asset = replica.asset
            target = work / f"{n:04d}-{Path(asset.relative_path).name}"  # a name of ours: nothing can escape
            started = time.monotonic()
            try:
                ok = asset_restore_to(asset, target, [replica], backends, report, include_archived=False)
            except OSError as exc:  # the drill's own disk, not the provider
                ok, report.failed[asset.relative_path] = False, f"cannot write the drill's copy: {exc}"
            seconds += time.monotonic() - started
            if ok:
                problem = _differs(target, size=asset.size, sha256=asset.sha256)
            else:
                problem = report.failed.get(asset.relative_path, "not restored")
            if problem:
                failures.append({"path": f"{asset.wedding.slug}/{asset.relative_path}", "reason": problem})
            else:
                restored_bytes += asset.size
    finally:
        shutil.rmtree(work, ignore_errors=True)
    drill.files = len(replicas) - len(failures)
    drill.bytes, drill.seconds, drill.failures = restored_bytes, seconds, failures
    drill.ok, drill.finished_at = not failures, timezone.now()
    drill.detail = (f"{drill.files} of {len(replicas)} files restored and matched the catalogue"
                    + (f"; {len(failures)} failed" if failures else ""))
    drill.save()
    _alert(drill, sampled=len(replicas))
    return drill


def _differs(path: Path, *, size: int, sha256: str) -> str:
    """Why the restored file is not what the catalogue holds ('' when it is): read again from the drill's disk."""
    digest, read = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            digest.update(chunk)
            read += len(chunk)
    if read != size:
        return f"restored {read} bytes, the catalogue says {size}"
    return "" if digest.hexdigest() == sha256 else "restored bytes differ from the catalogue's sha256"


def _alert(drill: Drill, *, sampled: int) -> None:
    key = f"{ALERT_PREFIX}{drill.provider_id}"
    if drill.ok:
        alert_resolve(key=key)
        return
    lines = [f"{f['path']}: {f['reason']}" for f in drill.failures[:20]]
    alert_raise(key=key, kind=Alert.Kind.DRILL_FAILED,
                subject=f"Restore drill failed on {drill.provider.name}: {len(drill.failures)} of {sampled} files",
                detail="\n".join(lines))


def drill_folder() -> str:
    """Where drills restore to: the system's temporary folder (``TMPDIR``)."""
    return tempfile.gettempdir()


def _tidy(provider: Provider) -> None:
    """What a crashed drill of this provider left (we hold its lock, so none is running): closed, folder removed."""
    for stale in Path(drill_folder()).glob(f"{FOLDER_PREFIX.format(pk=provider.pk)}*"):
        shutil.rmtree(stale, ignore_errors=True)
    for drill in Drill.objects.filter(provider=provider, finished_at__isnull=True):
        drill.finished_at = drill.started_at
        drill.detail = "interrupted: the worker stopped before the drill finished"
        drill.save(update_fields=["finished_at", "detail"])
