"""A selection of files, now: a zip streamed as it is built, each file from its best healthy copy with the one-file
download's checks (sha256 on the way, the next copy when one fails before sending; ``backups.fetch``). A file no
copy can serve (archived, or every copy failing) is left out and named in NOT-INCLUDED.txt inside the zip. Capped by
count and size, so one request never ties a web worker up for long; larger sets go through the wedding's zip job."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from django.conf import settings

from .audit import audit_record
from .fetch import FetchArchived, FetchError, asset_fetch
from .models import Asset, Wedding

MAX_FILES = 200
MAX_BYTES = 2 * 1024**3  # and never over WEDBACKUP_ZIP_MAX_BYTES
MISSING_NAME = "NOT-INCLUDED.txt"


class SelectionError(ValueError):
    """The selection is empty, names files of another wedding, or is over the caps; the message says which."""


def selection_limits() -> dict[str, int]:
    return {"selection_max_files": MAX_FILES, "selection_max_bytes": min(MAX_BYTES, settings.WEDBACKUP_ZIP_MAX_BYTES)}


def selection_check(*, wedding: Wedding, asset_ids: list[str]) -> list[Asset]:
    """The wedding's files the ids name, by path; SelectionError with a message for staff otherwise."""
    try:
        ids = sorted({int(i) for i in asset_ids})
    except ValueError as exc:
        raise SelectionError("the selection names something that is not a file") from exc
    if not ids:
        raise SelectionError("no file selected: tick the files to download first")
    if len(ids) > MAX_FILES:
        raise SelectionError(f"{len(ids)} files selected: a selection holds at most {MAX_FILES}; download the "
                             "whole wedding as a zip (Restore) instead")
    assets = list(Asset.objects.filter(wedding=wedding, pk__in=ids).select_related("wedding").order_by("relative_path"))
    if len(assets) != len(ids):
        raise SelectionError("some selected files are not files of this wedding")
    total, limit = sum(a.size for a in assets), selection_limits()["selection_max_bytes"]
    if total > limit:
        raise SelectionError(f"the selection holds {total / 1e6:,.1f} MB, over the {limit / 1e6:,.1f} MB a selection "
                             "may hold: select fewer files, or download the whole wedding as a zip (Restore)")
    return assets


def selection_zip(*, wedding: Wedding, assets: list[Asset], by) -> Iterator[bytes]:
    """The zip's bytes as they are made (audited once for the selection; each file as a download too)."""
    audit_record(by=by, action="asset.download_selection", target=f"wedding:{wedding.slug}",
                 details={"files": len(assets), "bytes": sum(a.size for a in assets),
                          "paths": [a.relative_path for a in assets[:50]]})
    sink = _Sink()
    missing: list[str] = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for asset in assets:
            try:
                fetched = asset_fetch(asset=asset, by=by)
            except FetchArchived as exc:
                missing.append(f"{asset.relative_path}: archived, rehydrate it first ({exc})")
                continue
            except FetchError as exc:
                missing.append(f"{asset.relative_path}: {exc}")
                continue
            with zf.open(asset.relative_path, "w", force_zip64=asset.size >= 2**31) as entry:
                for chunk in fetched.chunks:  # a copy found damaged part-way raises: the zip is cut, never complete
                    entry.write(chunk)
                    yield from sink.take()
            yield from sink.take()
        if missing:
            zf.writestr(MISSING_NAME, "Not in this zip (no copy could serve them now):\n" + "\n".join(missing) + "\n")
    yield from sink.take()


class _Sink(io.RawIOBase):
    """A write-only, unseekable file the zip writes into; ``take`` hands over what was written since."""

    def __init__(self):
        super().__init__()
        self._parts: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def take(self) -> list[bytes]:
        """What was written since the last take, as one chunk (none when nothing was)."""
        data, self._parts = b"".join(self._parts), []
        return [data] if data else []
