"""The console's read side for weddings and jobs: aggregate queries, a bounded number per page.

Protection in SQL. `protection.protection_gap` is the authority; the console needs the same answer for
a whole fleet at once, so it counts in the database, per asset (files gone from the source excluded,
as in `planning.asset_gaps`): "good" replicas (verified, holding the asset's current sha256, on an enabled
provider that is not down), the distinct provider kinds among them, and how many of them lie in the
wedding's residency zone. An asset is at risk when, under the default policy's rules for the wedding's
plan, good copies < min_copies, or kinds < min_distinct_providers, or (residency enforced, wedding
restricted to a zone) a good copy lies outside the zone. Simplification: the "restorable within
max_restore_hours" rule is not checked here (restore hours live in the price catalog, not the database).
The wedding page runs this live for its one wedding; fleet pages read the per-wedding sums that
`snapshots` stores from this same query (counting a million assets per page view would take seconds).
"""

from __future__ import annotations

import datetime as dt

import django_rq
from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    FloatField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce

from providers.models import Provider
from providers.residency import NONE

from .models import Asset, AuditEvent, BackupJob, BackupPolicy, Plan, Replica, Wedding

REACHABLE = [Provider.Status.ACTIVE, Provider.Status.DEGRADED, Provider.Status.DRAINING]
ACTIVE_JOBS = [BackupJob.Status.QUEUED, BackupJob.Status.RUNNING]
FAILED_JOBS = [BackupJob.Status.FAILED, BackupJob.Status.PARTIAL]
WEDDINGS_PER_PAGE = 25
REPLICAS_PER_PAGE = 100


def policy_rules() -> dict[str, dict]:
    """The default policy's effective rules per plan (an unsaved default when none exists: a GET never writes)."""
    policy = BackupPolicy.objects.filter(is_default=True).first() or BackupPolicy(name="default")
    return {plan: policy.for_plan(plan) for plan in Plan.values}


def _good(prefix: str = "replicas__") -> Q:
    return Q(**{
        f"{prefix}status": Replica.Status.VERIFIED,
        f"{prefix}sha256": F("sha256"),
        f"{prefix}provider__enabled": True,
        f"{prefix}provider__status__in": REACHABLE,
    })


def _plan_risk(rules: dict) -> Q:
    risk = Q(good_copies__lt=int(rules["min_copies"])) | Q(good_kinds__lt=int(rules["min_distinct_providers"]))
    if rules["enforce_residency"]:
        risk |= ~Q(wedding__residency_zone=NONE) & Q(good_in_zone__lt=F("good_copies"))
    return risk


def asset_health(rules: dict[str, dict]) -> QuerySet[Asset]:
    """Assets still in the source, each annotated with good_copies, good_kinds, good_in_zone and at_risk."""
    good = _good()
    return (
        Asset.objects.filter(missing_since__isnull=True)
        .annotate(
            good_copies=Count("replicas", filter=good),
            good_kinds=Count("replicas__provider__kind", filter=good, distinct=True),
            good_in_zone=Count("replicas", filter=good & Q(
                replicas__provider__residency_zone=F("wedding__residency_zone"))),
        )
        .annotate(at_risk=Case(
            *[When(Q(wedding__plan=plan) & _plan_risk(r), then=Value(True)) for plan, r in rules.items()],
            default=Value(False), output_field=BooleanField(),
        ))
    )


def protection_summary(rules: dict[str, dict] | None = None, weddings: QuerySet[Wedding] | None = None) -> dict:
    """Protected vs at-risk assets, bytes and weddings (one aggregate query over assets and replicas)."""
    assets = asset_health(rules or policy_rules())
    if weddings is not None:
        assets = assets.filter(wedding__in=weddings)
    risky = Q(at_risk=True)
    totals = assets.aggregate(
        assets=Count("id"), assets_at_risk=Count("id", filter=risky),
        bytes=Coalesce(Sum("size"), 0), bytes_at_risk=Coalesce(Sum("size", filter=risky), 0),
        weddings=Count("wedding_id", distinct=True), weddings_at_risk=Count("wedding_id", filter=risky, distinct=True),
    )
    totals["assets_protected"] = totals["assets"] - totals["assets_at_risk"]
    totals["bytes_protected"] = totals["bytes"] - totals["bytes_at_risk"]
    totals["weddings_protected"] = totals["weddings"] - totals["weddings_at_risk"]
    return totals


def active_jobs(limit: int = 20) -> list[BackupJob]:
    return list(BackupJob.objects.filter(status__in=ACTIVE_JOBS).select_related("wedding")[:limit])


def failed_jobs(limit: int = 50) -> list[BackupJob]:
    return list(BackupJob.objects.filter(status__in=FAILED_JOBS).select_related("wedding")[:limit])


SORTS = {  # ?sort= on the weddings list; every key is an indexed column or a stored figure
    "date": ("-date", "couple"), "oldest": ("date", "couple"), "couple": ("couple", "-date"),
    "bytes": (F("health__bytes").desc(nulls_last=True), "-date"),
    "copies": (F("copies_per_file").asc(nulls_last=True), "-date"),
    "risk": (F("health__bytes_at_risk").desc(nulls_last=True), "-date"),
}


def weddings_filtered(*, q: str = "", residency: str = "", plan: str = "", status: str = "", since: str = "",
                      until: str = "", sort: str = "") -> QuerySet[Wedding]:
    """The weddings list: search, filters, and per row bytes, files, copies per file and an at-risk flag,
    read from the stored WeddingHealth (``snapshots``); a wedding not checked yet has no ``refreshed_at``."""
    weddings = Wedding.objects.annotate(
        at_risk=Coalesce(F("health__at_risk"), Value(False)),
        total_bytes=F("health__bytes"), files=F("health__files"),
        copies_per_file=Case(
            When(health__files__gt=0, then=Cast("health__good_copies", FloatField()) / F("health__files")),
            default=Value(None), output_field=FloatField(),
        ),
        refreshed_at=F("health__refreshed_at"),
    )
    if q:
        weddings = weddings.filter(Q(couple__icontains=q) | Q(slug__icontains=q))
    if residency:
        weddings = weddings.filter(residency_zone=residency)
    if plan:
        weddings = weddings.filter(plan=plan)
    if status == "at-risk":
        weddings = weddings.filter(health__at_risk=True)
    elif status == "protected":
        weddings = weddings.filter(health__at_risk=False)
    if _date(since):
        weddings = weddings.filter(date__gte=_date(since))
    if _date(until):
        weddings = weddings.filter(date__lte=_date(until))
    return weddings.order_by(*SORTS.get(sort, SORTS["date"]))


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None  # a bad date in the URL filters nothing rather than failing the page


def weddings_page(*, page: str | int = 1, **filters) -> Page:
    return Paginator(weddings_filtered(**filters), WEDDINGS_PER_PAGE).get_page(page)


def wedding_distribution(wedding: Wedding) -> list[dict]:
    """Verified bytes and files by provider and storage class (the detail page's stacked bar)."""
    return list(
        Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED)
        .values("provider__name", "storage_class")
        .annotate(bytes=Sum("size"), files=Count("id"))
        .order_by("provider__name", "storage_class")
    )


def job_status(job: BackupJob) -> dict:
    """What the progress poller needs."""
    return {
        "id": job.pk, "kind": job.kind, "status": job.status, "active": job.is_active,
        "percent": job.progress_percent,
        "files": {"planned": job.files_planned, "done": job.files_done, "failed": job.files_failed},
        "bytes": {"planned": job.bytes_planned, "done": job.bytes_done, "failed": job.bytes_failed},
        "error": job.error_summary[:500],
    }


def jobs_page() -> dict:
    """The jobs page: queue depths (Redis), active and failed jobs."""
    return {
        "queues": [{"name": name, "count": django_rq.get_queue(name).count} for name in settings.QUEUE_NAMES],
        "active": active_jobs(50),
        "failed": failed_jobs(),
    }


AUDIT_PER_PAGE = 100


def audit_page(*, page: str | int = 1, action: str = "", actor: str = "", target: str = "") -> Page:
    """Audit events, newest first, filtered by action prefix, actor and target (one query per page)."""
    events = AuditEvent.objects.select_related("actor")
    if action:
        events = events.filter(action__startswith=action)
    if actor:
        events = events.filter(actor_label__icontains=actor)
    if target:
        events = events.filter(target__icontains=target)
    return Paginator(events.order_by("-at", "-pk"), AUDIT_PER_PAGE).get_page(page)
