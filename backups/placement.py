"""Feed routing from the database: provider state, wedding and asset traits, policy rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Sum
from django.utils import timezone

from providers.backends import backend_class
from providers.breaker import breaker_allows
from providers.models import Provider

from . import routing
from .models import Asset, BackupPolicy, Replica, Wedding

# Weddings older than this are archival: delivered, rarely looked at.
DELIVERY_WINDOW_DAYS = 180
_catalog_sources: list[Callable] = []


def price_catalog_register(source: Callable) -> None:
    """Where routing reads prices: a callable returning the price catalog in force. The costs app, which owns
    the catalog and its versions, registers it in ``CostsConfig.ready`` (routing needs prices, yet must not
    import the layer above it)."""
    _catalog_sources[:] = [source]


def price_catalog():
    if not _catalog_sources:
        raise ImproperlyConfigured("no price catalog registered: is the 'costs' app installed?")
    return _catalog_sources[0]()


def storage_terms(kind: str, region: str, storage_class: str, catalog=None) -> tuple[Decimal, float]:
    """(price per GB-month, hours to first byte) from the price catalog.

    Flat per-seat plans (Dropbox, Box) have no per-GB price; they rank by the plan's average price per
    included GB, so they are neither free nor dearer than they really are."""
    prices = (catalog or price_catalog()).provider(kind)
    cp = prices.class_price(region, storage_class)
    price = cp.storage_gb_month
    if not price and prices.plans:
        plan = prices.plan()
        if plan.included_bytes:
            price = plan.seat_month * plan.min_seats / (Decimal(plan.included_bytes) / prices.gb_bytes)
    return price, float(cp.restore_hours)


def _prices(provider: Provider, classes: tuple[str, ...], catalog) -> tuple[dict[str, Decimal], dict[str, float]]:
    prices, hours = {}, {}
    for cls in classes:
        prices[cls], hours[cls] = storage_terms(provider.kind, provider.region, cls, catalog)
    return prices, hours


def provider_states(providers: list[Provider] | None = None) -> list[routing.ProviderState]:
    providers = list(Provider.objects.all()) if providers is None else providers
    used = dict(
        Replica.objects.filter(status__in=[Replica.Status.VERIFIED, Replica.Status.UPLOADING])
        .values_list("provider_id")
        .annotate(total=Sum("size"))
    )
    catalog = price_catalog()  # the newest catalog staff loaded, else the shipped files
    states = []
    for p in providers:
        status, accepts = (p.status if p.enabled else routing.DISABLED), p.accepts_work
        if accepts and not breaker_allows(p.pk):  # uploads obey the breaker; the row can lag behind it
            status, accepts = Provider.Status.DOWN, False
        cls = backend_class(p.kind)
        prices, hours = _prices(p, cls.storage_classes, catalog)
        free = None if p.capacity_bytes is None else max(p.capacity_bytes - used.get(p.pk, 0), 0)
        states.append(routing.ProviderState(
            id=p.pk, name=p.name, kind=p.kind, region=p.region, zone=p.residency_zone,
            accepts_work=accepts, status=status, free_bytes=free,
            default_class=p.default_storage_class or cls.storage_classes[0], storage_classes=cls.storage_classes,
            price_per_gb_month=prices, restore_hours=hours,
            health=0.5 if p.status == Provider.Status.DEGRADED else 1.0,
        ))
    return states


def wedding_traits(wedding: Wedding, today: dt.date | None = None) -> routing.WeddingTraits:
    today = today or timezone.localdate()
    return routing.WeddingTraits(
        zone=wedding.residency_zone, plan=wedding.plan, requires_ml_analysis=wedding.requires_ml_analysis,
        wedding_day_critical=wedding.is_wedding_day_critical(today),
        archival=(today - wedding.date).days > DELIVERY_WINDOW_DAYS,
    )


def asset_traits(asset: Asset) -> routing.AssetTraits:
    return routing.AssetTraits(asset.kind, asset.size, asset.width, asset.height)


def rules_for(wedding: Wedding, policy: BackupPolicy | None = None) -> routing.Rules:
    policy = policy or BackupPolicy.default()
    return routing.Rules.from_policy(policy.for_plan(wedding.plan))
