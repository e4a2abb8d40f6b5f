"""Load the demo fleet through the real engine: import, back up with the workers, then the stored figures.

Older weddings are backed up the way a studio's first, naive setup would have left them: only the three
big clouds (the low-cost and watched-folder providers are switched off while they upload) and every copy
in the hot class (a setup with no lifecycle rules; the archival classes routing chose are changed back
with the engine's own verified class change). Recent weddings, the critical one among them, are then
backed up with every provider on. So the optimiser has real proposals, and the Costs page a real saving.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from backups.demo_fleet import demo_fleet_import, demo_fleet_specs
from backups.models import BackupJob, Replica, Wedding
from backups.placement import provider_states, rules_for
from backups.snapshots import fleet_health_refresh
from backups.tasks import backup_start
from costs.history import cost_history_backfill
from costs.lifecycle import HOT, TIER_CLASSES
from costs.moves import PolicyWouldBreak, Steps
from costs.proposals import optimizations_refresh
from costs.snapshots import cost_snapshot_take
from providers.backends.base import ProviderError
from providers.models import Provider

# Weddings older than this were backed up before the studio added its low-cost and folder providers.
NAIVE_BEFORE_DAYS = 60
LATER_KINDS = ("wasabi", "b2", "watched_folder", "dropbox", "box")


@dataclass
class DemoFleetReport:
    weddings: list[Wedding] = field(default_factory=list)
    backed_up: int = 0
    jobs_not_succeeded: list[str] = field(default_factory=list)
    made_hot: int = 0
    class_changes_failed: list[str] = field(default_factory=list)
    proposals: int = 0
    history: int = 0


def jobs_poll(jobs: list[BackupJob], *, timeout: float = 900, every: float = 1.0) -> None:
    """Wait for jobs that separate worker processes run (make run)."""
    ids = [j.pk for j in jobs]
    deadline = time.monotonic() + timeout
    active = [BackupJob.Status.QUEUED, BackupJob.Status.RUNNING]
    while BackupJob.objects.filter(pk__in=ids, status__in=active).exists() and time.monotonic() < deadline:
        time.sleep(every)


@contextlib.contextmanager
def providers_naive() -> Iterator[None]:
    """Only the big clouds take work inside the block; the others' enabled flags are restored after it."""
    later = {p.pk: p.enabled for p in Provider.objects.filter(kind__in=LATER_KINDS)}
    Provider.objects.filter(pk__in=later).update(enabled=False)
    try:
        yield
    finally:
        for pk, enabled in later.items():
            Provider.objects.filter(pk=pk).update(enabled=enabled)


def _backups_run(weddings: list[Wedding], jobs_wait: Callable[[list[BackupJob]], None],
                 report: DemoFleetReport) -> None:
    if not weddings:
        return
    with transaction.atomic():
        jobs = [backup_start(wedding=w) for w in weddings]
    jobs_wait(jobs)
    report.backed_up += len(jobs)
    for job in BackupJob.objects.filter(pk__in=[j.pk for j in jobs]).exclude(status=BackupJob.Status.SUCCEEDED):
        report.jobs_not_succeeded.append(f"{job}: {job.error_summary[:200]}")


def copies_make_hot(*, weddings: list[Wedding], report: DemoFleetReport) -> None:
    """Every verified copy of these weddings into its provider's hot class, by the engine's class change
    (policy checked first, confirmed on the provider with a HEAD)."""
    states = {s.id: s for s in provider_states()}
    refused: set[int] = set()
    for wedding in weddings:
        steps = Steps(rules_for(wedding), states, wedding.residency_zone, by="demo")
        replicas = (Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED)
                    .select_related("provider", "asset__wedding"))
        for replica in replicas:
            hot = TIER_CLASSES.get(replica.provider.kind, {}).get(HOT, ())
            if not hot or replica.storage_class in hot or replica.provider_id in refused:
                continue
            try:
                steps.change_class(replica, hot[0])
                report.made_hot += 1
            except (ProviderError, PolicyWouldBreak) as exc:
                # The GCS emulator keeps an object's class on a rewrite: its copies stay where routing put them.
                refused.add(replica.provider_id)
                report.class_changes_failed.append(f"{replica.provider.name} left as routed: {exc}")


def demo_weddings_ensure(*, var_dir: Path, count: int = 30, files: float = 1.0,
                         today: dt.date | None = None) -> list[Wedding]:
    """The demo weddings, imported from their generated folders (before the workers start: SQLite has one writer)."""
    reports = demo_fleet_import(root=var_dir / "demo-weddings", specs=demo_fleet_specs(count=count), files=files,
                                today=today or timezone.localdate())
    return [r.wedding for r in reports]


def demo_fleet_load(*, weddings: list[Wedding], jobs_wait: Callable[[list[BackupJob]], None] = jobs_poll,
                    today: dt.date | None = None) -> DemoFleetReport:
    """Back up the demo weddings never backed up (naive setup first, then the rest); then the stored protection
    figures, the proposals and the cost history. A second run backs up nothing again."""
    today = today or timezone.localdate()
    report = DemoFleetReport(weddings)
    held = set(Replica.objects.filter(asset__wedding__in=weddings).values_list("asset__wedding_id", flat=True))
    new = [w for w in weddings if w.pk not in held]
    naive = [w for w in new if (today - w.date).days > NAIVE_BEFORE_DAYS]
    with providers_naive():
        _backups_run(naive, jobs_wait, report)
    copies_make_hot(weddings=naive, report=report)
    _backups_run([w for w in new if w not in naive], jobs_wait, report)
    if new or not Replica.objects.exists():
        fleet_health_refresh()
        report.proposals = len(optimizations_refresh())
        report.history = cost_history_backfill(today=today)
        cost_snapshot_take()
    return report
