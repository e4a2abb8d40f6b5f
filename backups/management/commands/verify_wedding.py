from django.core.management.base import BaseCommand

from backups.verify import wedding_verify
from wedbackup.progress import CommandProgress, add_progress_arguments, human_seconds, progress_wanted

from ._output import EXIT_NOTHING_DONE, EXIT_PARTIAL, emit, exit_codes_epilog, fail, wedding_or_error


class Command(BaseCommand):
    help = "Check every replica of a wedding (head + checksum; --deep re-reads and hashes); repair mismatches."

    def add_arguments(self, parser):
        parser.add_argument("wedding_id", type=int)
        parser.add_argument("--deep", action="store_true")
        parser.add_argument("--keep-orphans", action="store_true", help="Report orphans without deleting them.")
        parser.add_argument("--json", action="store_true")
        add_progress_arguments(parser)
        exit_codes_epilog(parser)

    def handle(self, *args, **o):
        wedding = wedding_or_error(o["wedding_id"])
        show = progress_wanted(stdout=self.stdout, stderr=self.stderr, as_json=o["json"], disabled=o["no_progress"])
        with CommandProgress(show=show, description="verifying", unit="replicas") as progress:
            report = wedding_verify(wedding=wedding, deep=o["deep"], clean_orphans=not o["keep_orphans"],
                                    on_progress=lambda done, total: progress.update(files_done=done,
                                                                                    files_total=total))
        lines = [f"  mismatch: {m}" for m in report.mismatched] + [f"  unreachable: {u}" for u in report.unreachable]
        lines += [f"  orphan: {x}" for x in report.orphans]
        if report.repair_job:
            lines.append(f"Repair job {report.repair_job} started.")
        summary = (f"verified {report.ok} of {report.checked} replicas{' (deep)' if o['deep'] else ''} of "
                   f"{wedding.slug} in {human_seconds(progress.elapsed)}; {len(report.mismatched)} mismatched, "
                   f"{len(report.unreachable)} unreachable, {len(report.orphans)} orphan(s)")
        emit(self, report.as_dict(), as_json=o["json"], lines=lines, summary=summary)
        if report.mismatched or report.unreachable:
            nothing_checked = not report.ok and not report.mismatched
            raise fail("verification found problems", code=EXIT_NOTHING_DONE if nothing_checked else EXIT_PARTIAL)
