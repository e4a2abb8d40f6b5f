"""The wedding page's photo grid: one page of a wedding's files with their protection state and whether a
thumbnail exists (a stat per tile, never a read)."""

from __future__ import annotations

import datetime as dt

from django.core.paginator import Page, Paginator
from django.db.models import Q
from django.utils import timezone

from .models import Rehydration, Wedding
from .queries import asset_health, policy_rules
from .rehydration_models import READY_DAYS
from .thumbnails import thumbnail_exists

TILES_PER_PAGE = 48


def wedding_photos_page(*, wedding: Wedding, page: str | int = 1,
                        rules: dict[str, dict] | None = None) -> Page:
    """Files still in the source, by path, each with good_copies, at_risk and has_thumbnail (``rules``: the
    plans' policy rules, when the caller has them already)."""
    assets = (asset_health(rules or policy_rules()).filter(wedding=wedding)
              .only("id", "relative_path", "kind", "sha256", "size").order_by("relative_path"))
    tiles = Paginator(assets, TILES_PER_PAGE).get_page(page)
    rehydrations = tile_rehydrations(asset_ids=[a.pk for a in tiles])
    for asset in tiles:
        asset.has_thumbnail = thumbnail_exists(sha256=asset.sha256)
        asset.name = asset.relative_path.rsplit("/", 1)[-1]
        asset.rehydration = rehydrations.get(asset.pk)
    return tiles


def tile_rehydrations(*, asset_ids: list[int]) -> dict[int, Rehydration]:
    """The newest rehydration of each file that is waiting, or ready and still readable (one query)."""
    since = timezone.now() - dt.timedelta(days=READY_DAYS)
    rows = (Rehydration.objects.filter(asset_id__in=asset_ids)
            .filter(Q(status=Rehydration.Status.WAITING) | Q(status=Rehydration.Status.READY, ready_at__gte=since))
            .order_by("asset_id", "-requested_at"))
    found: dict[int, Rehydration] = {}
    for row in rows:
        found.setdefault(row.asset_id, row)
    return found
