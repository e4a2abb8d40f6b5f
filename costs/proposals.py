"""Run the optimiser and keep its proposals as Optimization rows; measure compressibility (the I/O part)."""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

from django.db import transaction

from backups.models import Asset, Replica, Wedding
from providers.backends import backend_for
from providers.backends.base import ProviderError

from .advisory import COMPRESSIBLE_KINDS
from .costing import duplicates, fleet_state, rules_by_plan
from .models import Optimization
from .optimizer import Proposal, optimise
from .tiering import fleet_under_rules, proposals_on_rules
from .tiering_rules import tiering_rules_installed
from .versions import current_catalog

SAMPLE_FILES = 6
SAMPLE_BYTES = 256 * 1024


def _sample(asset: Asset, limit: int) -> bytes:
    """The first `limit` bytes of the asset: from its source file, else from an instantly readable replica."""
    path = Path(asset.source_location) if asset.source_location else None
    if path is not None and path.is_file():
        with path.open("rb") as fh:
            return fh.read(limit)
    for replica in asset.replicas.filter(status=Replica.Status.VERIFIED).select_related("provider"):
        with contextlib.suppress(ProviderError, OSError), backend_for(replica.provider).open(replica.object_key) as fh:
            return fh.read(limit)
    return b""


def compression_ratios(*, wedding_ids: list[int] | None = None, files: int = SAMPLE_FILES,
                       limit: int = SAMPLE_BYTES) -> dict[tuple[int, str], float]:
    """(wedding id, asset kind) -> compressed/original size, measured with zlib on a sample of real bytes."""
    weddings = Wedding.objects.all() if wedding_ids is None else Wedding.objects.filter(pk__in=wedding_ids)
    ratios = {}
    for wedding in weddings.only("pk"):
        for kind in COMPRESSIBLE_KINDS:
            original = packed = 0
            for asset in wedding.assets.filter(kind=kind).order_by("-size")[:files]:
                data = _sample(asset, limit)
                original += len(data)
                packed += len(zlib.compress(data, 6))
            if original:
                ratios[(wedding.pk, kind)] = min(1.0, packed / original)
    return ratios


def proposals_compute(*, wedding: Wedding | None = None, measure: bool = True) -> tuple[list[Proposal], str]:
    """Where our lifecycle rules are in place on a provider, its copies are planned as the rules will leave them,
    so no proposal does per object what the provider's rules do anyway."""
    catalog = current_catalog()
    ids = None if wedding is None else [wedding.pk]
    fleet = fleet_state(catalog=catalog, wedding_ids=ids)
    ratios = compression_ratios(wedding_ids=ids) if measure else {}
    extra = {"ratios": ratios, "duplicates": duplicates(ids)}
    installed = tiering_rules_installed()
    if installed:
        return proposals_on_rules(fleet_under_rules(fleet, installed), catalog, rules_by_plan(), installed,
                                  **extra), catalog.version
    return optimise(fleet, catalog, rules_by_plan(), **extra), catalog.version


def optimizations_refresh(*, wedding: Wedding | None = None, measure: bool = True) -> list[Optimization]:
    """Replace the open proposals (of one wedding, or all) with fresh ones."""
    proposals, version = proposals_compute(wedding=wedding, measure=measure)
    with transaction.atomic():
        stale = Optimization.objects.filter(status=Optimization.Status.PROPOSED)
        if wedding is not None:
            stale = stale.filter(wedding=wedding)
        stale.update(status=Optimization.Status.SUPERSEDED)
        return Optimization.objects.bulk_create([
            Optimization(wedding_id=p.wedding_id, kind=p.kind, summary=p.summary, changes=list(p.changes),
                         current_monthly=p.current_monthly, new_monthly=p.new_monthly, one_off_cost=p.one_off_cost,
                         payback_months=None if p.payback_months is None else float(p.payback_months),
                         catalog_version=version)
            for p in proposals
        ], batch_size=1000)
