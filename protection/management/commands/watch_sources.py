"""manage.py watch_sources: watch wedding-day-critical weddings' folders and back up new files as they settle."""

import signal
import threading

from django.core.management.base import BaseCommand

from protection.watcher import SourceWatcher


class Command(BaseCommand):
    help = ("Watch the source folders of wedding-day-critical weddings (filesystem events, plus a periodic rescan) "
            "and the inbox; back up each file once it is complete. Runs until stopped; safe to run on several "
            "machines (one owner per wedding) and to restart at any time (it catches up by rescanning).")

    def add_arguments(self, parser):
        parser.add_argument("--owner", default="", help="This watcher's name in the leases (default host:pid).")

    def handle(self, *args, **o):
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        watcher = SourceWatcher(owner=o["owner"])
        self.stdout.write(f"watching sources as {watcher.owner}", ending="\n")
        self.stdout.flush()
        watcher.run(stop=stop)
