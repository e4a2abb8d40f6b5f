"""Watched sources: a folder that vanished or cannot be read, and a wedding-day folder that stopped receiving files."""

from __future__ import annotations

import datetime as dt
import os

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django.utils.formats import date_format

from backups.models import Wedding

from .alerts import alert_raise
from .models import Alert

Kind = Alert.Kind


def folder_problem(path: str) -> str:
    """Why a source folder cannot be read ("" when it can): gone, not a folder, or not listable."""
    try:
        if not os.path.exists(path):
            return "the folder is gone"
        if not os.path.isdir(path):
            return "the path is not a folder"
        with os.scandir(path) as entries:
            next(entries, None)
    except OSError as exc:
        return f"the folder cannot be read ({exc.strerror or type(exc).__name__})"
    return ""


def sources_check(*, now: dt.datetime) -> dict[str, set[str]]:
    """Watched weddings whose folder vanished; and weddings on their day whose folder had files earlier today but
    none new (``Asset.seen_complete_at``) for WEDBACKUP_ALERT_SOURCE_IDLE_MINUTES (a card reader unplugged, a
    laptop asleep, a sync stopped). A vanished folder is not also reported idle."""
    vanished, idle = set(), set()
    watched = Wedding.objects.filter(watch_source=True).exclude(source_path="")
    for wedding in watched.only("pk", "couple", "date", "source_path"):
        problem = folder_problem(wedding.source_path)
        if problem:
            key = f"source_vanished:{wedding.pk}"
            alert_raise(key=key, kind=Kind.SOURCE_VANISHED, subject=f"{wedding}: watched folder unreadable",
                        detail=f"{wedding.source_path}: {problem}. New files there are not backed up.")
            vanished.add(wedding.pk)
    today = timezone.localdate(now)
    start_of_day = timezone.make_aware(dt.datetime.combine(today, dt.time()))
    quiet = dt.timedelta(minutes=int(getattr(settings, "WEDBACKUP_ALERT_SOURCE_IDLE_MINUTES", 90)))
    for wedding in watched.filter(date=today).annotate(last_file_at=Max("assets__seen_complete_at")):
        last = wedding.last_file_at
        if wedding.pk in vanished or last is None or last < start_of_day or now - last < quiet:
            continue
        key, at = f"source_idle:{wedding.pk}", date_format(timezone.localtime(last), "H:i T")
        alert_raise(key=key, kind=Kind.SOURCE_IDLE, subject=f"{wedding}: no new file since {at} on the wedding day",
                    detail=f"{wedding.source_path} received its last new file at {at}, "
                           f"{int((now - last).total_seconds() // 60)} minutes before this check.")
        idle.add(key)
    return {Kind.SOURCE_VANISHED: {f"source_vanished:{pk}" for pk in vanished}, Kind.SOURCE_IDLE: idle}
