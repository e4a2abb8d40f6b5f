"""The plain layout every provider holds, readable with aws cli or rclone alone:

    weddings/<wedding-slug>/<kind>/<relative path>
    weddings/<wedding-slug>/MANIFEST.json
"""

from __future__ import annotations

from providers.backends.base import validate_key

from .models import Asset, Wedding

ROOT = "weddings"
MANIFEST_NAME = "MANIFEST.json"


def wedding_prefix(wedding: Wedding) -> str:
    return f"{ROOT}/{wedding.slug}/"


def object_key(asset: Asset) -> str:
    """The key for an asset; it can never leave the wedding's prefix (validate_key refuses '..')."""
    return validate_key(f"{wedding_prefix(asset.wedding)}{asset.kind}/{asset.relative_path}")


def manifest_key(wedding: Wedding) -> str:
    return validate_key(f"{wedding_prefix(wedding)}{MANIFEST_NAME}")
