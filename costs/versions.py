"""Versioned price catalogs: staff load a newer set of price files; the newest loaded one is in force."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from costs.catalog import Catalog, default_catalog, load_catalog

from .models import CatalogVersion


def catalog_load(*, path: str | Path) -> tuple[CatalogVersion, bool]:
    """Validate every price file in `path` and store them as a CatalogVersion. (row, created)."""
    folder = Path(path)
    catalog = load_catalog(folder)  # raises CatalogError naming the file and field
    files = {f.name: f.read_text(encoding="utf-8") for f in sorted(folder.glob("*.yaml"))}
    return CatalogVersion.objects.get_or_create(
        version=catalog.version,
        defaults={"effective_date": catalog.effective_date, "source": str(folder.resolve()), "data": {"files": files}},
    )


def current_catalog() -> Catalog:
    """The newest loaded CatalogVersion, or the files shipped with the code when none was loaded."""
    row = CatalogVersion.objects.order_by("-loaded_at", "-pk").values_list("version", flat=True).first()
    if row is None:
        return default_catalog()
    return _from_version(row)


@functools.lru_cache(maxsize=4)
def _from_version(version: str) -> Catalog:
    files = CatalogVersion.objects.get(version=version).data["files"]
    with tempfile.TemporaryDirectory(prefix="catalog-") as tmp:
        for name, text in files.items():
            (Path(tmp) / Path(name).name).write_text(text, encoding="utf-8")
        return load_catalog(tmp)
