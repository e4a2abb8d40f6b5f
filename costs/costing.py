"""The cost of what is stored now, from database aggregates (never a Python loop over assets).

One grouped query over verified replicas (wedding, asset kind, size band, provider, class, with counts of
current copies) and one over assets (wedding, kind, band) become the Fleet the pure optimiser reads.
Size bands split at the catalog's small-object thresholds, so "objects under 128 KiB" is a conditional
count the database does, and every band is wholly small or wholly not for each class.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Case, Count, F, IntegerField, Max, Q, Sum, Value, When
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from backups.layout import MANIFEST_NAME
from backups.models import Asset, BackupPolicy, Plan, Replica, Wedding
from backups.routing import Rules
from costs.catalog import Catalog
from costs.pricing import Infeasible, account_minimum_cost, capacity_bytes, monthly_flat_cost, seats_needed
from providers.backends import backend_class
from providers.models import Provider

from .fleet import PINNED_BAND, Cohort, CopyGroup, Fleet, ProviderInfo, storage_monthly
from .models import AccessRecord
from .optimizer import optimise
from .versions import current_catalog

ACCESS_WINDOW_DAYS = 90


def access_record(*, wedding: Wedding, kind: str, bytes: int, asset_kind: str = "") -> AccessRecord:
    """Record a restore, download or preview, so the optimiser keeps looked-at weddings warm."""
    return AccessRecord.objects.create(wedding=wedding, kind=kind, bytes=bytes, asset_kind=asset_kind)


def access_on_read(*, wedding: Wedding, kind: str, bytes: int, **_) -> None:
    """Receiver of ``backups.signals.wedding_read``."""
    if bytes:
        access_record(wedding=wedding, kind=kind, bytes=bytes)


def thresholds(catalog: Catalog) -> tuple[int, ...]:
    found = {cp.small_object_threshold for p in catalog.providers.values() for cp in p.classes.values()}
    return tuple(sorted(t for t in found if t))


def _band(prefix: str, limits: tuple[int, ...]) -> Case:
    whens = [When(**{f"{prefix}relative_path__endswith": MANIFEST_NAME}, then=Value(PINNED_BAND))]
    whens += [When(**{f"{prefix}size__lt": t}, then=Value(i)) for i, t in enumerate(limits)]
    return Case(*whens, default=Value(len(limits)), output_field=IntegerField())


def rules_by_plan(policy: BackupPolicy | None = None) -> dict[str, Rules]:
    policy = policy or BackupPolicy.default()
    return {plan: Rules.from_policy(policy.for_plan(plan)) for plan in Plan.values}


def provider_infos(catalog: Catalog) -> dict[int, ProviderInfo]:
    used = dict(Replica.objects.filter(status=Replica.Status.VERIFIED).values_list("provider_id")
                .annotate(total=Sum("size")).order_by())
    infos = {}
    for p in Provider.objects.all():
        cls = backend_class(p.kind)
        stored = used.get(p.pk, 0) or 0
        prices = catalog.provider(p.kind)
        flat = bool(prices.plans) and not prices.class_price(p.region, "").storage_gb_month
        cap = p.capacity_bytes
        if flat:
            plan_cap = capacity_bytes(prices.plan(), prices.plan().min_seats)
            cap = plan_cap if cap is None else (cap if plan_cap is None else min(cap, plan_cap))
        infos[p.pk] = ProviderInfo(
            id=p.pk, name=p.name, kind=p.kind, region=p.region, zone=p.residency_zone, classes=cls.storage_classes,
            can_change_class=cls.can_change_class, accepts_work=p.accepts_work,
            available=p.enabled and p.status != Provider.Status.DOWN, stored_bytes=stored,
            capacity_bytes=None if cap is None else max(cap - stored, 0), flat=flat,
            lifecycle_rules=cls.lifecycle_rules,
        )
    return infos


def fleet_state(*, catalog: Catalog | None = None, wedding_ids: list[int] | None = None,
                today: dt.date | None = None) -> Fleet:
    """The whole fleet (or some weddings) as cohorts with their copy groups: three grouped queries."""
    catalog = catalog or current_catalog()
    today = today or timezone.localdate()
    limits = thresholds(catalog)
    fleet = Fleet(limits, provider_infos(catalog))
    replicas = Replica.objects.filter(status=Replica.Status.VERIFIED)
    assets = Asset.objects.all()
    if wedding_ids is not None:
        replicas, assets = replicas.filter(asset__wedding_id__in=wedding_ids), assets.filter(wedding_id__in=wedding_ids)
    groups: dict[tuple, list[CopyGroup]] = defaultdict(list)
    now = timezone.now()
    for row in (replicas.annotate(band=_band("asset__", limits))
                .values("asset__wedding_id", "asset__kind", "band", "provider_id", "storage_class")
                .annotate(objects=Count("id"), bytes=Sum("size"), newest=Max("updated"),
                          current=Count("id", filter=Q(sha256=F("asset__sha256"))),
                          locked=Count("id", filter=Q(retain_until__gt=now)))
                .order_by()):
        key = (row["asset__wedding_id"], row["asset__kind"], row["band"])
        groups[key].append(CopyGroup(row["provider_id"], row["storage_class"], row["objects"], row["bytes"] or 0,
                                     row["current"], max((now - row["newest"]).days, 0), locked=row["locked"] > 0))
    cohorts = list(assets.annotate(band=_band("", limits)).values("wedding_id", "kind", "band")
                   .annotate(n=Count("id"), bytes=Sum("size")).order_by())
    weddings = Wedding.objects.filter(pk__in={c["wedding_id"] for c in cohorts})
    info = {w: (d, z, p) for w, d, z, p in weddings.values_list("pk", "date", "residency_zone", "plan")}
    since = now - dt.timedelta(days=ACCESS_WINDOW_DAYS)
    access = {r["wedding_id"]: r for r in AccessRecord.objects.filter(at__gte=since, wedding_id__in=info)
              .values("wedding_id").annotate(bytes=Sum("bytes"), last=Max("at")).order_by()}
    wedding_bytes: dict[int, int] = defaultdict(int)
    for c in cohorts:
        wedding_bytes[c["wedding_id"]] += c["bytes"] or 0
    months = Decimal(ACCESS_WINDOW_DAYS) / 30
    for c in cohorts:
        w = c["wedding_id"]
        date, zone, plan = info[w]
        seen = access.get(w)
        share = (c["bytes"] or 0) / wedding_bytes[w] if wedding_bytes[w] else 0
        fleet.cohorts.append(Cohort(
            wedding_id=w, zone=zone, plan=plan, age_days=(today - date).days, asset_kind=c["kind"], band=c["band"],
            assets=c["n"], bytes=c["bytes"] or 0, copies=tuple(groups.get((w, c["kind"], c["band"]), ())),
            accessed_days_ago=(now - seen["last"]).days if seen else None,
            access_bytes_month=int(Decimal(seen["bytes"] or 0) * Decimal(share) / months) if seen else 0,
        ))
    return fleet


def duplicates(wedding_ids: list[int] | None = None) -> dict[int, tuple[int, int]]:
    """Wedding id -> (extra objects, extra bytes) held for content already stored under another path."""
    rows = Asset.objects.values("wedding_id", "sha256").annotate(n=Count("id"), size=Max("size")).filter(n__gt=1)
    if wedding_ids is not None:
        rows = rows.filter(wedding_id__in=wedding_ids)
    out: dict[int, tuple[int, int]] = {}
    for r in rows.order_by():  # one row per duplicated content, not per asset
        objects, size = out.get(r["wedding_id"], (0, 0))
        out[r["wedding_id"]] = (objects + r["n"] - 1, size + (r["n"] - 1) * r["size"])
    return out


@dataclass(frozen=True)
class FixedCharge:
    """A per-account charge that does not scale with a copy, with the words that explain it."""

    monthly: Decimal
    label: str  # shown in place of a storage class
    note: str


def _size(n: int) -> str:
    return filesizeformat(n).replace("\xa0", " ")


def _billed_size(n: int, unit: int) -> str:
    """A billed volume in the provider's own unit (Wasabi's "1 TB" is 10**12 bytes)."""
    gb = Decimal(n) / unit
    return f"{gb / 1000:g} TB" if gb >= 1000 and gb % 1000 == 0 else f"{gb:,.0f} GB"


def fixed_charges(catalog: Catalog, fleet: Fleet) -> dict[int, FixedCharge]:
    """Per-account charges: flat plans' seats, and minimum billed volumes (Wasabi bills at least 1 TB a month),
    each explained, since a few MB costing 6.99 a month reads as a bug otherwise."""
    out = {}
    for p in fleet.providers.values():
        if not p.stored_bytes:
            continue
        prices = catalog.provider(p.kind)
        if p.flat:
            plan = prices.plan()
            try:
                seats = seats_needed(plan, p.stored_bytes)
            except Infeasible:
                seats = plan.min_seats
            monthly, billed = monthly_flat_cost(plan, seats), max(seats, plan.min_seats)
            out[p.id] = FixedCharge(monthly, "plan seats", (
                f"{p.name}: {plan.provider} {plan.name} is billed per seat, storage included: {billed}"
                f" seats (minimum {plan.min_seats}) at {plan.seat_month:.2f} {prices.currency} = {monthly:.2f} "
                f"{prices.currency}/month, whatever is stored"))
        elif prices.account_min_bytes:
            price = prices.class_price(p.region, "")
            monthly = account_minimum_cost(prices, price, p.stored_bytes)
            if monthly:
                least = _billed_size(prices.account_min_bytes, prices.gb_bytes)
                out[p.id] = FixedCharge(monthly, "minimum charge", (
                    f"includes {p.kind.replace('_', ' ').title()}'s {least} minimum: {p.name} stores "
                    f"{_size(p.stored_bytes)} but is billed for at least {least} a month, so {monthly:.2f} "
                    f"{prices.currency}/month of the total is the minimum charge"))
    return out


def fixed_monthly(catalog: Catalog, fleet: Fleet) -> dict[int, Decimal]:
    """Per-account charges that do not scale with a copy, as amounts."""
    return {pid: charge.monthly for pid, charge in fixed_charges(catalog, fleet).items()}


def costs_by_group(catalog: Catalog, fleet: Fleet) -> dict[tuple[int, str], Decimal]:
    out: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for c in fleet.cohorts:
        for g in c.copies:
            out[(g.provider_id, g.storage_class)] += storage_monthly(
                catalog, fleet, fleet.providers[g.provider_id], g.storage_class, c.band, g.objects, g.bytes)
    return out


def costs_summary(*, wedding_ids: list[int] | None = None) -> dict:
    """What the console's cost page shows: now, after every offered proposal, and where the money goes."""
    catalog = current_catalog()
    fleet = fleet_state(catalog=catalog, wedding_ids=wedding_ids)
    by_group = costs_by_group(catalog, fleet)
    fixed = fixed_charges(catalog, fleet) if wedding_ids is None else {}
    rows = defaultdict(Decimal)
    notes = {}
    for (pid, cls), monthly in by_group.items():
        rows[(fleet.providers[pid].name, cls)] += monthly
    for pid, charge in fixed.items():
        rows[(fleet.providers[pid].name, charge.label)] += charge.monthly
        notes[(fleet.providers[pid].name, charge.label)] = charge.note
    current = sum(rows.values(), Decimal(0))
    proposals = optimise(fleet, catalog, rules_by_plan(), duplicates=duplicates(wedding_ids))
    savings: dict[str, Decimal] = defaultdict(Decimal)
    for p in proposals:
        savings[p.kind] += p.monthly_saving
    optimised = current - sum(savings.values(), Decimal(0))
    return {
        "current_monthly": current, "optimised_monthly": optimised, "savings_by_kind": dict(savings),
        "reduction_percent": (100 * (current - optimised) / current) if current else Decimal(0),
        "by_provider_class": [{"provider": n, "storage_class": c, "monthly": m, **({"note": notes[(n, c)]} if (n, c)
                               in notes else {})} for (n, c), m in sorted(rows.items())],
        "proposals": len(proposals), "catalog_version": catalog.version, "currency": "USD",
    }
