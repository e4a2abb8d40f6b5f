from django.core.management.base import BaseCommand

from backups.systemdb import SystemDbError, system_db_generations, system_db_restore

from ._output import EXIT_NOTHING_DONE, emit, exit_codes_epilog, fail


class Command(BaseCommand):
    help = ("Restore WedBackup's own database from the newest dump on the providers that verifies (after loading "
            "the recovery kit on a fresh install). When none survives, use rebuild_catalog.")

    def add_arguments(self, parser):
        parser.add_argument("--list", action="store_true", help="List the dumps found; restore nothing.")
        parser.add_argument("--force", action="store_true",
                            help="Replace a database that already holds weddings.")
        parser.add_argument("--json", action="store_true")
        exit_codes_epilog(parser)

    def handle(self, *args, **o):
        if o["list"]:
            found = [{"generation": g, "provider": p.name, "engine": m.get("engine"), "bytes": m.get("size")}
                     for g, p, m in system_db_generations()]
            emit(self, {"generations": found}, as_json=o["json"],
                 lines=[f"{f['generation']} on {f['provider']} ({f['engine']}, {f['bytes']} bytes)" for f in found]
                 or ["no database dump found"])
            return
        try:
            result = system_db_restore(force=o["force"])
        except SystemDbError as exc:
            raise fail(str(exc), code=EXIT_NOTHING_DONE) from None
        lines = [f"  skipped: {line}" for line in result["tried"]]
        if result["credentials_to_type_again"]:
            lines.append("  not in the recovery kit, type their credentials again: "
                         + ", ".join(result["credentials_to_type_again"]))
        emit(self, result, as_json=o["json"], lines=lines,
             summary=f"restored generation {result['generation']} from {result['provider']}")
