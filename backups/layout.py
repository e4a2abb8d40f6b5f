"""The plain layout every provider holds, readable with aws cli or rclone alone:

    weddings/<wedding-slug>/<kind>/<relative path>
    weddings/<wedding-slug>/MANIFEST.json
    weddings/INDEX/<wedding-slug>.json        the fleet index: one small object per wedding
    wedbackup-system/<generation>/...         WedBackup's own database, encrypted
"""

from __future__ import annotations

from providers.backends.base import validate_key

from .models import Asset, Wedding

ROOT = "weddings"
MANIFEST_NAME = "MANIFEST.json"
# Upper case: a slug is always lower case, so no wedding's folder can be the index.
INDEX_PREFIX = f"{ROOT}/INDEX/"
# WedBackup's own database, dumped and encrypted (``systemdb``): outside the weddings' folders.
SYSTEM_PREFIX = "wedbackup-system/"


def wedding_prefix(wedding: Wedding) -> str:
    return f"{ROOT}/{wedding.slug}/"


def object_key(asset: Asset) -> str:
    """The key for an asset; it can never leave the wedding's prefix (validate_key refuses '..')."""
    return validate_key(f"{wedding_prefix(asset.wedding)}{asset.kind}/{asset.relative_path}")


def manifest_key(wedding: Wedding) -> str:
    return validate_key(f"{wedding_prefix(wedding)}{MANIFEST_NAME}")


def slug_manifest_key(slug: str) -> str:
    return validate_key(f"{ROOT}/{slug}/{MANIFEST_NAME}")


def index_key(slug: str) -> str:
    return validate_key(f"{INDEX_PREFIX}{slug}.json")


def index_slug(key: str) -> str | None:
    """The wedding slug an index key names, or None for anything else under the prefix."""
    name = key[len(INDEX_PREFIX):] if key.startswith(INDEX_PREFIX) else ""
    return name[: -len(".json")] if name.endswith(".json") and "/" not in name and len(name) > 5 else None
