from django.core.management.base import BaseCommand, CommandError

from backups.verify import wedding_verify

from ._output import emit, wedding_or_error


class Command(BaseCommand):
    help = "Check every replica of a wedding (head + checksum; --deep re-reads and hashes); repair mismatches."

    def add_arguments(self, parser):
        parser.add_argument("wedding_id", type=int)
        parser.add_argument("--deep", action="store_true")
        parser.add_argument("--keep-orphans", action="store_true", help="Report orphans without deleting them.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        wedding = wedding_or_error(o["wedding_id"])
        report = wedding_verify(wedding=wedding, deep=o["deep"], clean_orphans=not o["keep_orphans"])
        lines = [f"{report.ok} of {report.checked} replicas verified, {len(report.mismatched)} mismatched, "
                 f"{len(report.unreachable)} unreachable, {len(report.orphans)} orphan(s)"]
        lines += [f"  mismatch: {m}" for m in report.mismatched] + [f"  unreachable: {u}" for u in report.unreachable]
        lines += [f"  orphan: {x}" for x in report.orphans]
        if report.repair_job:
            lines.append(f"Repair job {report.repair_job} started.")
        emit(self, report.as_dict(), as_json=o["json"], lines=lines)
        if report.mismatched or report.unreachable:
            raise CommandError("verification found problems")
