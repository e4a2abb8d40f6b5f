"""The inbox: a studio registers a wedding by dropping its folder, with a small ``wedding.yaml``, into
WEDBACKUP_INBOX_ROOT (as with card dumps). The folder is imported through ``wedding_import`` (so the import-roots
rule holds), becomes the wedding's watched source and is backed up at once.

    couple: Ana & Ben
    date: 2026-06-20
    country: FR
    city: Lyon          # optional
    plan: premium       # optional: standard (default), cost-saver, premium

``wedding.yaml`` is catalogued and backed up with the photos: it is the wedding's own record, and a restored folder
can be dropped into an inbox again as it is. A bad ``wedding.yaml`` is logged and reported, and tried again only
once the file changes (never in a tight loop)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from pathlib import Path

import yaml
from django.conf import settings
from django.db import DatabaseError

from backups.ingest import wedding_import
from backups.models import Plan, Wedding
from backups.roots import import_root_problem
from backups.tasks import backup_start

log = logging.getLogger(__name__)
DESCRIPTOR = "wedding.yaml"
MAX_DESCRIPTOR_BYTES = 64 * 1024
_FIELDS = {"couple", "date", "country", "city", "plan", "requires_ml_analysis"}
# A descriptor that failed, by path, with the (size, mtime) it failed with: unchanged, it is not read again.
_refused: dict[str, tuple[int, int]] = {}


def inbox_root() -> str:
    return settings.WEDBACKUP_INBOX_ROOT


def descriptor_parse(text: str) -> dict:
    """The wedding fields of a ``wedding.yaml``; ValueError saying what is wrong."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:  # a value YAML itself could not read, e.g. the date 2025-13-01
        raise ValueError(f"a value cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("expected a mapping with couple, date and country")
    unknown = set(map(str, data)) - _FIELDS
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_FIELDS))})")
    missing = [k for k in ("couple", "date", "country") if not data.get(k)]
    if missing:
        raise ValueError(f"missing: {', '.join(missing)}")
    couple = str(data["couple"]).strip()
    if not couple or len(couple) > 200:
        raise ValueError("couple must be 1 to 200 characters")
    date = data["date"]
    if not isinstance(date, dt.date):
        try:
            date = dt.date.fromisoformat(str(date))
        except ValueError:
            raise ValueError(f"date must be YYYY-MM-DD, not {date!r}") from None
    country = str(data["country"]).strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ValueError(f"country must be an ISO 3166 two-letter code, not {data['country']!r}")
    plan = str(data.get("plan") or Plan.STANDARD)
    if plan not in Plan.values:
        raise ValueError(f"plan must be one of {', '.join(Plan.values)}, not {plan!r}")
    return {"couple": couple, "date": date, "country": country, "city": str(data.get("city") or "")[:120],
            "plan": plan, "requires_ml_analysis": bool(data.get("requires_ml_analysis", False))}


def inbox_scan(*, root: str | None = None, quiet: float | None = None) -> dict:
    """Register every new folder of the inbox that holds a ``wedding.yaml``: import it, back it up. Returns
    {"registered": [slugs], "refused": {folder: why}, "problem": why the inbox itself is refused, or ""}."""
    root = inbox_root() if root is None else root
    quiet = float(settings.WEDBACKUP_WATCH_QUIET_SECONDS) if quiet is None else quiet
    result: dict = {"registered": [], "refused": {}, "problem": ""}
    if not root:
        return result
    outside = import_root_problem(root)
    if outside:
        result["problem"] = f"the inbox {root} is refused: {outside}"
        return result
    try:
        folders = sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.is_symlink())
    except FileNotFoundError:
        return result  # no inbox yet: nothing dropped
    except OSError as exc:
        result["problem"] = f"the inbox {root} cannot be read ({exc.strerror or type(exc).__name__})"
        return result
    registered = set(Wedding.objects.filter(source_path__startswith=str(Path(root).resolve()))
                     .values_list("source_path", flat=True))
    for folder in folders:
        if str(folder.resolve()) in registered or not (folder / DESCRIPTOR).is_file():
            continue
        why = _register(folder, result, quiet)
        if why:
            result["refused"][folder.name] = why
    return result


def _register(folder: Path, result: dict, quiet: float) -> str:
    descriptor = folder / DESCRIPTOR
    try:
        st = descriptor.stat()
        if _refused.get(str(descriptor)) == (st.st_size, st.st_mtime_ns):
            return "unchanged since it was refused"
        if 0 <= time.time_ns() - st.st_mtime_ns < quiet * 1e9:
            return ""  # still being written: next time
        if st.st_size > MAX_DESCRIPTOR_BYTES:
            raise ValueError(f"{DESCRIPTOR} is larger than {MAX_DESCRIPTOR_BYTES} bytes")
        fields = descriptor_parse(descriptor.read_text(encoding="utf-8"))
        outside = import_root_problem(folder)  # the folder itself may be a link out of the inbox
        if outside:
            raise ValueError(outside)
        # Never re-point an existing wedding: a second folder for the same couple and date would take it over,
        # mark the first folder's files missing and write its same-named files over the first one's copies.
        taken = Wedding.objects.filter(couple=fields["couple"], date=fields["date"]).exclude(
            source_path=str(folder.resolve())).first()
        if taken is not None:
            raise ValueError(f"{taken.couple} on {taken.date} is already a wedding, from "
                             f"{taken.source_path or 'an earlier import'}; add these files to that folder, or "
                             "change the couple or date in this one")
        # Files still being copied in are left pending: the watcher or the schedule takes them once settled.
        report = wedding_import(path=folder, quiet_seconds=quiet, **fields)
    except (OSError, ValueError, UnicodeDecodeError, DatabaseError) as exc:
        why = f"{DESCRIPTOR}: {exc}"
        if _refused.get(str(descriptor)) is None:
            log.warning("inbox: %s not registered: %s", folder, why)
        if descriptor.exists():
            st = descriptor.stat()
            _refused[str(descriptor)] = (st.st_size, st.st_mtime_ns)
        return why
    _refused.pop(str(descriptor), None)
    backup_start(wedding=report.wedding)
    log.info("inbox: registered %s from %s (%d files)", report.wedding.slug, folder, len(report.added))
    result["registered"].append(report.wedding.slug)
    return ""
