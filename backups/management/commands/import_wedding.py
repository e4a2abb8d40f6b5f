import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from backups.ingest import wedding_import
from backups.models import Plan

from ._output import emit


class Command(BaseCommand):
    help = "Catalogue a wedding folder (recursive): one asset per file, with a per-file report."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--couple", required=True)
        parser.add_argument("--date", required=True, type=dt.date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument("--country", required=True, help="ISO country code, e.g. FR")
        parser.add_argument("--city", default="")
        parser.add_argument("--plan", choices=Plan.values, default=Plan.STANDARD)
        parser.add_argument("--ml", action="store_true", help="The wedding needs ML analysis.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        try:
            report = wedding_import(path=o["path"], couple=o["couple"], date=o["date"], country=o["country"],
                                    city=o["city"], plan=o["plan"], requires_ml_analysis=o["ml"])
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        w = report.wedding
        lines = [f"Wedding {w.pk} {w.slug}: {len(report.added)} added, {len(report.changed)} changed, "
                 f"{len(report.unchanged)} unchanged, {len(report.removed)} removed from the folder "
                 f"(kept in backups), {len(report.problems)} problem(s)"]
        lines += [f"  problem: {p.relative_path}: {p.reason}" for p in report.problems]
        lines += [f"  removed: {r}" for r in report.removed]
        emit(self, report.as_dict(), as_json=o["json"], lines=lines)
