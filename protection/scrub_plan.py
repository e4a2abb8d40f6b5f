"""Which copies a scrub run reads: the slice rule, pure arithmetic over a few aggregate counts.

Every verified copy has a deadline: one cycle (``BackupPolicy.scrub_days``, D) after it was last read back
(``Replica.scrubbed_at``). A copy never scrubbed counts from when it was verified, but never from before the
first scrub run (the epoch), less one run period: turning scrubbing on spreads the existing fleet over the
first cycle's D/p runs instead of reading all of it on day one.

Runs come every ``p`` (the scrub schedule's interval, a day by default). A copy whose deadline is at most
``k*p`` away can still be read by ``k + 1`` runs (this one, and the one at the deadline included), so this run reads

    slice = max over k = 0..ceil(D/p) of ceil(C_k / (k + 1)),   C_k = copies with deadline <= now + k*p

(earliest-deadline-first at the least even pace that still meets every deadline). In steady state that is
about N*p/D copies a run, each copy read once a cycle; copies already past their deadline (k = 0) are all read
now; a backlog (a provider that was down, a missed run, a big new wedding) raises the pace only as much as the
nearest deadlines need. The slice is taken in order of deadline bucket (the run it is due by), then cost of
reading (cheapest readable copies first: archived classes are only HEADed, then egress plus retrieval per GB from
the price catalog, then the provider's name), then oldest deadline.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest

from backups.models import BackupPolicy, Replica
from backups.placement import price_catalog
from providers.backends import backend_class
from providers.breaker import breaker_allows
from providers.models import Provider

from .models import Schedule, ScrubRun

DEFAULT_PERIOD = dt.timedelta(days=1)
MAX_HORIZONS = 400  # a schedule of minutes against a cycle of a month: deadlines grouped into this many buckets


@dataclass(frozen=True)
class SlicePlan:
    cycle: dt.timedelta
    period: dt.timedelta
    epoch: dt.datetime
    size: int  # copies this run reads
    due: int  # copies whose deadline falls within the cycle ahead (or is past)
    due_now: int  # copies at or past their deadline: all read by this run


def scrub_period() -> dt.timedelta:
    """How often scrub runs: the enabled scrub schedule's interval, else a day."""
    minutes = (Schedule.objects.filter(task=Schedule.Task.SCRUB, enabled=True)
               .order_by("interval_minutes").values_list("interval_minutes", flat=True).first())
    return dt.timedelta(minutes=minutes) if minutes else DEFAULT_PERIOD


def scrub_epoch(*, now: dt.datetime) -> dt.datetime:
    first = ScrubRun.objects.order_by("started_at").values_list("started_at", flat=True).first()
    return min(first, now) if first else now


def copy_is_archived(replica: Replica) -> bool:
    """Stored in a class that must be rehydrated (and paid for) before it can be read."""
    return replica.storage_class in backend_class(replica.provider.kind).archive_classes


def read_cost_per_gb(provider: Provider, storage_class: str) -> float | None:
    """What reading a GB of this copy costs (retrieval plus egress), from the price catalog; None if unknown."""
    try:
        price = price_catalog().class_price(provider.kind, provider.region, storage_class)
        retrieval = price.retrieval[price.retrieval_default].per_gb if price.retrieval else 0
        egress = 0 if price.network.free_egress_ratio else price.network.egress_gb
        return float(retrieval + egress)
    except Exception:  # an unknown kind, region or class: rank by the provider's name instead
        return None


def readable_providers() -> list[Provider]:
    """Providers a scrub may read now: enabled, not marked down, breaker closed."""
    return [p for p in Provider.objects.filter(enabled=True).exclude(status=Provider.Status.DOWN).order_by("name")
            if breaker_allows(p.pk)]


def scrub_candidates(*, providers: list[Provider]) -> QuerySet[Replica]:
    return Replica.objects.filter(status=Replica.Status.VERIFIED, provider__in=providers)


def _cycle_start(epoch: dt.datetime, period: dt.timedelta):
    """When a copy's current cycle began: its last scrub; else its verification (never before the epoch) less a
    period, so a new copy is first read by the D/p-th run, not the one after, and is not due again together
    with the copies read by the epoch's run."""
    first_seen = Greatest(Coalesce("verified_at", "created"), Value(epoch, output_field=DateTimeField()))
    backdated = ExpressionWrapper(first_seen - Value(period, output_field=DurationField()),
                                  output_field=DateTimeField())
    return Coalesce("scrubbed_at", backdated, output_field=DateTimeField())


def _horizons(cycle: dt.timedelta, period: dt.timedelta) -> list[tuple[int, dt.timedelta]]:
    """(runs left, horizon) pairs from now to one cycle ahead: k periods ahead, k + 1 runs can still read."""
    last = max(1, math.ceil(cycle / period))
    step = max(1, math.ceil(last / MAX_HORIZONS))
    return [(k + 1, k * period) for k in [0, *range(step, last + step, step)]]


def slice_size(*, counts: list[tuple[int, int]]) -> int:
    """The slice rule: (runs left, copies due within them) pairs in, copies to read now out."""
    return max((math.ceil(due / runs) for runs, due in counts if runs > 0), default=0)


def slice_plan(*, candidates: QuerySet[Replica], now: dt.datetime, cycle: dt.timedelta | None = None,
               period: dt.timedelta | None = None) -> SlicePlan:
    cycle = cycle or dt.timedelta(days=max(1, BackupPolicy.default().scrub_days))
    period = period or scrub_period()
    epoch = scrub_epoch(now=now)
    horizons = _horizons(cycle, period)
    annotated = candidates.annotate(cycle_start=_cycle_start(epoch, period))
    aggregates = {f"c{runs}": Count("pk", filter=Q(cycle_start__lte=now + horizon - cycle))
                  for runs, horizon in horizons}
    counts = annotated.aggregate(**aggregates)
    pairs = [(runs, counts[f"c{runs}"]) for runs, _ in horizons]
    return SlicePlan(cycle=cycle, period=period, epoch=epoch, size=slice_size(counts=pairs),
                     due=pairs[-1][1], due_now=pairs[0][1])


def _cost_rank(candidates: QuerySet[Replica], providers: list[Provider]) -> Case | Value:
    """Cheapest to read first: archived classes (HEAD only), then by catalogue cost, then by name."""
    by_id = {p.pk: p for p in providers}
    ranked = []
    for pk, storage_class in candidates.order_by().values_list("provider_id", "storage_class").distinct():
        provider = by_id[pk]
        if storage_class in backend_class(provider.kind).archive_classes:
            cost = -1.0
        else:
            known = read_cost_per_gb(provider, storage_class)
            cost = known if known is not None else float("inf")
        ranked.append(((cost, provider.name), pk, storage_class))
    ranked.sort(key=lambda item: item[0])
    whens = [When(provider_id=pk, storage_class=storage_class, then=Value(rank))
             for rank, (_, pk, storage_class) in enumerate(ranked)]
    return Case(*whens, default=Value(len(ranked)), output_field=IntegerField()) if whens else Value(0)


def slice_ids(*, candidates: QuerySet[Replica], plan: SlicePlan, now: dt.datetime,
              providers: list[Provider]) -> list[int]:
    """The primary keys of the copies this run reads, in the order they are read."""
    if plan.size <= 0:
        return []
    horizons = _horizons(plan.cycle, plan.period)
    start = _cycle_start(plan.epoch, plan.period)
    bucket = Case(*[When(cycle_start__lte=now + horizon - plan.cycle, then=Value(runs)) for runs, horizon in horizons],
                  default=Value(len(horizons) + 1), output_field=IntegerField())
    rank = _cost_rank(candidates, providers)
    ordered = (candidates.annotate(cycle_start=start).annotate(bucket=bucket, cost_rank=rank)
               .order_by("bucket", "cost_rank", "cycle_start", "pk"))
    return list(ordered.values_list("pk", flat=True)[:plan.size])
