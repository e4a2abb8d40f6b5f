from pathlib import Path

from django.core.management.base import BaseCommand

from backups.restore import restore_planned, wedding_restore
from wedbackup.progress import CommandProgress, add_progress_arguments, human_bytes, human_seconds, progress_wanted

from ._output import EXIT_USAGE, emit, exit_codes_epilog, fail, outcome_code, wedding_or_error


class Command(BaseCommand):
    help = "Restore a wedding from its best healthy replicas into a folder (sha256 checked, atomic writes)."

    def add_arguments(self, parser):
        parser.add_argument("wedding_id", type=int)
        parser.add_argument("--to", required=True, type=Path)
        parser.add_argument("--only", help="Glob on the relative path, e.g. 'ceremony/*.jpg'.")
        parser.add_argument("--include-archived", action="store_true",
                            help="Request rehydration of archived copies when nothing faster is left.")
        parser.add_argument("--json", action="store_true")
        add_progress_arguments(parser)
        exit_codes_epilog(parser)

    def handle(self, *args, **o):
        wedding = wedding_or_error(o["wedding_id"])
        show = progress_wanted(stdout=self.stdout, stderr=self.stderr, as_json=o["json"], disabled=o["no_progress"])
        with CommandProgress(show=show, description="restoring", with_bytes=True) as progress:
            if progress.shown:
                files, size = restore_planned(wedding=wedding, only=o["only"])
                progress.total(files=files, bytes_=size)
            try:
                report = wedding_restore(wedding=wedding, to=o["to"], only=o["only"],
                                         include_archived=o["include_archived"],
                                         progress=lambda asset, ok: progress.advance(bytes_=asset.size))
            except OSError as exc:  # the target folder itself; a file that cannot be written fails alone
                raise fail(f"cannot restore into {o['to']}: {exc.strerror or exc}", code=EXIT_USAGE) from None
        lines = [f"  failed: {p}: {why}" for p, why in report.failed.items()]
        lines += [f"  rehydrating: {r}" for r in report.rehydrating]
        summary = (f"restored {len(report.restored)} of {len(report.restored) + len(report.failed)} files "
                   f"({human_bytes(report.bytes)}) of {wedding.slug} to {o['to']} in {human_seconds(progress.elapsed)}"
                   f"; {len(report.failed)} failed, {report.fallbacks} from a fallback replica")
        emit(self, report.as_dict(), as_json=o["json"], lines=lines, summary=summary)
        if report.failed:
            raise fail(f"{len(report.failed)} file(s) could not be restored",
                       code=outcome_code(done=len(report.restored), failed=len(report.failed)))
