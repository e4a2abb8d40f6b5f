import getpass
import os
from pathlib import Path

from django.core.management.base import BaseCommand

from backups.recovery_kit import KitError, kit_create, kit_load, master_key_file_default

from ._output import EXIT_USAGE, emit, exit_codes_epilog, fail


class Command(BaseCommand):
    help = ("Write a recovery kit (providers, and under a passphrase their credentials and the master key), or load "
            "one on a fresh install.")

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--out", type=Path, help="Write a new kit to this file.")
        action.add_argument("--load", type=Path, help="Load this kit: providers and the master key.")
        parser.add_argument("--key-file", type=Path,
                            help="With --load: where to write the master key (default: var/encryption_key when "
                                 "WEDBACKUP_ENCRYPTION_KEY is not set).")
        parser.add_argument("--passphrase-env", metavar="VAR",
                            help="Read the passphrase from this environment variable instead of asking.")
        parser.add_argument("--json", action="store_true")
        exit_codes_epilog(parser)

    def _passphrase(self, o, *, twice: bool) -> str:
        if o["passphrase_env"]:
            if o["passphrase_env"] not in os.environ:
                raise fail(f"environment variable {o['passphrase_env']} is not set", code=EXIT_USAGE)
            return os.environ[o["passphrase_env"]]
        first = getpass.getpass("Recovery kit passphrase: ")
        if twice and getpass.getpass("Again: ") != first:
            raise fail("the passphrases differ", code=EXIT_USAGE)
        return first

    def handle(self, *args, **o):
        try:
            if o["out"]:
                result = kit_create(out=o["out"], passphrase=self._passphrase(o, twice=True))
                summary = (f"recovery kit written to {result['out']} ({len(result['providers'])} provider(s), master "
                           f"key {result['master_key_id']}): keep it off this server, and its passphrase apart")
            else:
                result = kit_load(path=o["load"], passphrase=self._passphrase(o, twice=False),
                                  key_file=o["key_file"] or master_key_file_default())
                summary = (f"{len(result['created'])} provider(s) created, {len(result['updated'])} updated; "
                           f"master key {result['master_key_id']} " + (
                               f"written to {result['master_key_file']} (restart the workers and the console)"
                               if result["master_key_file"] else "already the one in use"))
        except KitError as exc:
            raise fail(str(exc), code=EXIT_USAGE) from None
        emit(self, result, as_json=o["json"], lines=[], summary=summary)
