from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from backups.restore import wedding_restore

from ._output import emit, wedding_or_error


class Command(BaseCommand):
    help = "Restore a wedding from its best healthy replicas into a folder (sha256 checked, atomic writes)."

    def add_arguments(self, parser):
        parser.add_argument("wedding_id", type=int)
        parser.add_argument("--to", required=True, type=Path)
        parser.add_argument("--only", help="Glob on the relative path, e.g. 'ceremony/*.jpg'.")
        parser.add_argument("--include-archived", action="store_true",
                            help="Request rehydration of archived copies when nothing faster is left.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        wedding = wedding_or_error(o["wedding_id"])
        report = wedding_restore(wedding=wedding, to=o["to"], only=o["only"],
                                 include_archived=o["include_archived"])
        lines = [f"{len(report.restored)} file(s) restored to {o['to']} ({report.bytes} bytes, "
                 f"{report.fallbacks} from a fallback replica), {len(report.failed)} failed"]
        lines += [f"  failed: {p}: {why}" for p, why in report.failed.items()]
        lines += [f"  rehydrating: {r}" for r in report.rehydrating]
        emit(self, report.as_dict(), as_json=o["json"], lines=lines)
        if report.failed:
            raise CommandError(f"{len(report.failed)} file(s) could not be restored")
