import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from providers.config import ConfigError, providers_load


class Command(BaseCommand):
    help = "Create or update providers from a YAML file (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        try:
            result = providers_load(text=o["file"].read_text())
        except OSError as exc:
            raise CommandError(f"cannot read {o['file']}: {exc.strerror}") from None
        except ConfigError as exc:
            if o["json"]:
                self.stdout.write(json.dumps({"ok": False, "problems": exc.problems}, indent=2))
            raise CommandError("nothing applied:\n  " + "\n  ".join(exc.problems)) from None
        if o["json"]:
            self.stdout.write(json.dumps({"ok": True, "created": result.created, "updated": result.updated}, indent=2))
        else:
            self.stdout.write(f"{len(result.created)} created, {len(result.updated)} updated")
