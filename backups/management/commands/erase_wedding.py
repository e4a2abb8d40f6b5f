from django.core.management.base import BaseCommand

from backups.deletion import DeleteRefused
from backups.erasure import wedding_erasure

from ._output import EXIT_NOTHING_DONE, EXIT_USAGE, emit, exit_codes_epilog, fail, wedding_or_error


class Command(BaseCommand):
    help = ("Erase a wedding everywhere (the couple's right to erasure): every object on every provider, then its "
            "records; refused under legal hold or while a retention lock holds. Audited with the list of objects.")

    def add_arguments(self, parser):
        parser.add_argument("wedding_id", type=int)
        parser.add_argument("--confirm", required=True, metavar="SLUG", help="The wedding's slug, typed again.")
        parser.add_argument("--json", action="store_true")
        exit_codes_epilog(parser)

    def handle(self, *args, **o):
        wedding = wedding_or_error(o["wedding_id"])
        if o["confirm"] != wedding.slug:
            raise fail(f"--confirm must be the wedding's slug ({wedding.slug}); nothing was erased", code=EXIT_USAGE)
        try:
            report = wedding_erasure(wedding=wedding, by="cli")
        except DeleteRefused as exc:
            raise fail(f"not erased: {exc}", code=EXIT_NOTHING_DONE) from None
        emit(self, report, as_json=o["json"],
             lines=[f"Erased {report['slug']}: {len(report['objects'])} object(s) deleted, {report['assets']} "
                    "file record(s) removed.", *(f"  {line}" for line in report["objects"])])
