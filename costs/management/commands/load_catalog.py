from django.core.management.base import BaseCommand, CommandError

from costs.catalog import CatalogError
from costs.versions import catalog_load


class Command(BaseCommand):
    help = "Validate a folder of price files (one YAML per provider) and make it the catalog in force."

    def add_arguments(self, parser):
        parser.add_argument("path", help="Folder holding the *.yaml price files")

    def handle(self, *args, path: str, **options):
        try:
            row, created = catalog_load(path=path)
        except CatalogError as exc:
            raise CommandError(str(exc)) from None
        state = "loaded" if created else "already loaded"
        self.stdout.write(f"catalog {row.version} (effective {row.effective_date}) {state}")
