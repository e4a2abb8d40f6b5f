import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand

from backups.ingest import wedding_import
from backups.models import Plan
from wedbackup.progress import CommandProgress, add_progress_arguments, human_seconds, progress_wanted

from ._output import EXIT_OK, EXIT_USAGE, emit, exit_codes_epilog, fail, outcome_code


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
        add_progress_arguments(parser)
        exit_codes_epilog(parser)

    def handle(self, *args, **o):
        show = progress_wanted(stdout=self.stdout, stderr=self.stderr, as_json=o["json"], disabled=o["no_progress"])
        # No total before the folder is walked: the bar pulses and counts the entries examined.
        with CommandProgress(show=show, description="cataloguing") as progress:
            try:
                report = wedding_import(path=o["path"], couple=o["couple"], date=o["date"], country=o["country"],
                                        city=o["city"], plan=o["plan"], requires_ml_analysis=o["ml"],
                                        on_file=lambda _path: progress.advance())
            except FileNotFoundError as exc:
                raise fail(str(exc), code=EXIT_USAGE) from None
        w = report.wedding
        lines = [f"  problem: {p.relative_path}: {p.reason}" for p in report.problems]
        lines += [f"  removed: {r}" for r in report.removed]
        summary = (f"catalogued wedding {w.pk} {w.slug} in {human_seconds(progress.elapsed)}: {len(report.added)} "
                   f"added, {len(report.changed)} changed, {len(report.unchanged)} unchanged, {len(report.removed)} "
                   f"removed from the folder (kept in backups), {len(report.problems)} problem(s)"
                   + (f", {len(report.pending)} still being written (next scan)" if report.pending else ""))
        emit(self, report.as_dict(), as_json=o["json"], lines=lines, summary=summary)
        code = outcome_code(done=len(report.added) + len(report.changed) + len(report.unchanged),
                            failed=len(report.problems))
        if code != EXIT_OK:
            raise fail(f"{len(report.problems)} file(s) could not be catalogued", code=code)
