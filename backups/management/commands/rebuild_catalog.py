from django.core.management.base import BaseCommand

from backups.rebuild import catalog_rebuild
from wedbackup.progress import CommandProgress, add_progress_arguments, human_seconds, progress_wanted

from ._output import EXIT_NOTHING_DONE, EXIT_PARTIAL, EXIT_USAGE, emit, exit_codes_epilog, fail


class Command(BaseCommand):
    help = ("Rebuild weddings, assets and replicas from the manifests on the providers (after loading the recovery "
            "kit or load_providers on an empty database). Idempotent: run it again to finish what was left.")

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="only", nargs="+", metavar="PROVIDER",
                            help="Read the manifests of these providers only.")
        parser.add_argument("--json", action="store_true")
        add_progress_arguments(parser)
        exit_codes_epilog(parser)

    def handle(self, *args, **o):
        show = progress_wanted(stdout=self.stdout, stderr=self.stderr, as_json=o["json"], disabled=o["no_progress"])
        with CommandProgress(show=show, description="rebuilding", unit="weddings") as progress:
            try:
                report = catalog_rebuild(only=o["only"], progress=lambda slug, n, total: progress.update(
                    files_done=n, files_total=total, status=f"rebuilt {slug}"))
            except ValueError as exc:
                raise fail(str(exc), code=EXIT_USAGE) from None
        lines = [f"  unreachable: {line}" for line in report.unreachable]
        lines += [f"  skipped: {line}" for line in report.skipped]
        lines += [f"  disagreement: {line}" for line in report.disagreements]
        lines += [f"  unverified: {line}" for line in report.replicas_unverified[:50]]
        summary = (f"{len(report.weddings)} wedding(s) rebuilt, {report.assets} file(s), {report.replicas_verified} "
                   f"replica(s) verified, {len(report.replicas_unverified)} left unverified, "
                   f"{len(report.skipped)} skipped, {len(report.unreachable)} provider(s) unreachable in "
                   f"{human_seconds(progress.elapsed)}")
        emit(self, report.as_dict(), as_json=o["json"], lines=lines, summary=summary)
        if report.unreachable or report.skipped or report.replicas_unverified:
            raise fail("the catalogue is not complete: run rebuild_catalog again once the problems above are solved",
                       code=EXIT_PARTIAL if report.weddings else EXIT_NOTHING_DONE)
