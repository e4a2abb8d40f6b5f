"""The wedding page's photo grid: one page of a wedding's files with their protection state and whether a
thumbnail exists (a stat per tile, never a read)."""

from __future__ import annotations

from django.core.paginator import Page, Paginator

from .models import Wedding
from .queries import asset_health, policy_rules
from .thumbnails import thumbnail_exists

TILES_PER_PAGE = 48


def wedding_photos_page(*, wedding: Wedding, page: str | int = 1,
                        rules: dict[str, dict] | None = None) -> Page:
    """Files still in the source, by path, each with good_copies, at_risk and has_thumbnail (``rules``: the
    plans' policy rules, when the caller has them already)."""
    assets = (asset_health(rules or policy_rules()).filter(wedding=wedding)
              .only("id", "relative_path", "kind", "sha256", "size").order_by("relative_path"))
    tiles = Paginator(assets, TILES_PER_PAGE).get_page(page)
    for asset in tiles:
        asset.has_thumbnail = thumbnail_exists(sha256=asset.sha256)
        asset.name = asset.relative_path.rsplit("/", 1)[-1]
    return tiles
