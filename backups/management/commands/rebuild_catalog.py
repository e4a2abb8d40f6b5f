from django.core.management.base import BaseCommand, CommandError

from backups.rebuild import catalog_rebuild

from ._output import emit


class Command(BaseCommand):
    help = ("Rebuild weddings, assets and replicas from the manifests on the providers (after loading the recovery "
            "kit or load_providers on an empty database). Idempotent: run it again to finish what was left.")

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="only", nargs="+", metavar="PROVIDER",
                            help="Read the manifests of these providers only.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        def progress(slug: str, n: int, total: int) -> None:
            if not o["json"]:
                self.stdout.write(f"[{n}/{total}] {slug}")

        try:
            report = catalog_rebuild(only=o["only"], progress=progress)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        lines = [f"{len(report.weddings)} wedding(s) rebuilt, {report.assets} file(s), {report.replicas_verified} "
                 f"replica(s) verified, {len(report.replicas_unverified)} left unverified"]
        lines += [f"  unreachable: {line}" for line in report.unreachable]
        lines += [f"  skipped: {line}" for line in report.skipped]
        lines += [f"  disagreement: {line}" for line in report.disagreements]
        lines += [f"  unverified: {line}" for line in report.replicas_unverified[:50]]
        emit(self, report.as_dict(), as_json=o["json"], lines=lines)
