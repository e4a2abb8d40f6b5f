"""The console's selectors for pages that show more than one app: the overview and the wedding page."""

from __future__ import annotations

from django.core.paginator import Paginator

from backups.models import Plan, Replica, Wedding
from backups.photo_grid import wedding_photos_page
from backups.queries import (
    REPLICAS_PER_PAGE,
    active_jobs,
    asset_health,
    policy_rules,
    protection_summary,
    wedding_distribution,
)
from backups.recovery_kit import kit_reminder
from backups.rpo import wedding_rpo
from backups.snapshots import fleet_summary
from costs.models import Optimization
from costs.snapshots import cost_history, cost_latest
from protection.alert_queries import alerts_open_count
from providers.queries import providers_with_usage


def overview() -> dict:
    """The overview page: protection, providers (tiles and replicas chart), running jobs, monthly cost."""
    return {
        "summary": fleet_summary(),
        "weddings_total": Wedding.objects.count(),
        "providers": list(providers_with_usage()),
        "jobs": active_jobs(),
        "costs": cost_latest(),
        "cost_history": cost_history(),
        "recovery_kit_reminder": kit_reminder(),
        "alerts_open": alerts_open_count(),
    }


def wedding_detail(wedding: Wedding, *, replica_page: str | int = 1, photo_page: str | int = 1) -> dict:
    """Everything the wedding page shows; a fixed number of queries whatever the wedding's size."""
    rules = policy_rules()
    replicas = (
        Replica.objects.filter(asset__wedding=wedding)
        .select_related("asset", "provider")
        .order_by("asset__relative_path", "provider__name")
    )
    return {
        "wedding": wedding,
        "rules": rules[wedding.plan] if wedding.plan in rules else rules[Plan.STANDARD],
        "summary": protection_summary(rules, Wedding.objects.filter(pk=wedding.pk)),
        "at_risk_assets": list(
            asset_health(rules).filter(wedding=wedding, at_risk=True).order_by("relative_path")[:20]
        ),
        "distribution": wedding_distribution(wedding),
        "rpo": wedding_rpo(wedding=wedding),
        "replicas": Paginator(replicas, REPLICAS_PER_PAGE).get_page(replica_page),
        "tiles": wedding_photos_page(wedding=wedding, page=photo_page, rules=rules),
        "jobs": list(wedding.jobs.select_related("requested_by")[:20]),
        "optimizations": list(Optimization.objects.filter(wedding=wedding).select_related("applied_by")[:10]),
    }
