"""What the console shows of the read-back checks: scrub progress (from the figures each run stores, never a
fleet-wide count per page view) and recent runs, and the last restore drill of every provider."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from providers.models import Provider

from .models import Drill, ScrubRun

RECENT_RUNS = 10


@dataclass(frozen=True)
class ScrubProgress:
    as_of: dt.datetime  # when the run that counted finished
    verified: int
    within_cycle: int
    never: int
    cycle_days: float
    last_full_cycle: dt.datetime | None  # the oldest read among the copies; None while some were never read

    @property
    def share(self) -> float:
        """Percentage of verified copies read back within their cycle."""
        return 100.0 * self.within_cycle / self.verified if self.verified else 100.0


@dataclass(frozen=True)
class ProviderDrill:
    provider: Provider
    drill: Drill | None  # the last drill with a verdict, else the last one that ended (e.g. nothing to restore)


def scrub_progress_latest() -> ScrubProgress | None:
    run = (ScrubRun.objects.filter(finished_at__isnull=False, detail__has_key="progress")
           .order_by("-finished_at").first())
    if run is None:
        return None
    figures = run.detail["progress"]
    last = figures.get("last_full_cycle")
    return ScrubProgress(as_of=run.finished_at, verified=figures["verified"], within_cycle=figures["within_cycle"],
                         never=figures["never"], cycle_days=run.detail.get("cycle_days", 0),
                         last_full_cycle=dt.datetime.fromisoformat(last) if last else None)


def scrub_runs_recent(*, limit: int = RECENT_RUNS) -> list[ScrubRun]:
    return list(ScrubRun.objects.order_by("-started_at")[:limit])


def drills_last_per_provider() -> list[ProviderDrill]:
    ended = Drill.objects.filter(provider=OuterRef("pk"), finished_at__isnull=False).order_by("-started_at")
    providers = list(Provider.objects.filter(enabled=True).order_by("name").annotate(
        judged_id=Subquery(ended.filter(ok__isnull=False).values("pk")[:1]),
        ended_id=Subquery(ended.values("pk")[:1])))
    drills = Drill.objects.in_bulk([p.judged_id or p.ended_id for p in providers if p.judged_id or p.ended_id])
    return [ProviderDrill(provider=p, drill=drills.get(p.judged_id or p.ended_id)) for p in providers]


def protection_page() -> dict:
    return {"progress": scrub_progress_latest(), "scrub_runs": scrub_runs_recent(),
            "scrub_running": ScrubRun.objects.filter(finished_at__isnull=True).exists(),
            "provider_drills": drills_last_per_provider()}
