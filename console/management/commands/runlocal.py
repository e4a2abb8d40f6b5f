"""`make run`: local clouds, demo data, RQ workers (one for probes), rq's cron scheduler for the recurring jobs,
and the web console; Ctrl-C stops all."""

import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from backups.demo import demo_providers_apply, demo_user_ensure
from console.demo_fleet import demo_fleet_load, demo_weddings_ensure
from providers.localservers.fleet import fleet_start


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run WedBackup locally with real local cloud servers and demo data."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-demo", action="store_true")
        parser.add_argument("--demo-weddings", type=int, default=30, help="How many demo weddings (at most 32).")

    def handle(self, *args, **o):
        var = settings.VAR_DIR
        for root in (*settings.WEDBACKUP_IMPORT_ROOTS, *settings.WEDBACKUP_RESTORE_ROOTS):
            Path(root).mkdir(parents=True, exist_ok=True)  # the console's import and restore folders
        if settings.WEDBACKUP_INBOX_ROOT:
            Path(settings.WEDBACKUP_INBOX_ROOT).mkdir(parents=True, exist_ok=True)  # drop wedding folders here
        self.stdout.write("Starting local cloud servers (SeaweedFS, Azurite, GCS emulator)...")
        fleet = fleet_start(var / "localclouds")
        children: list[subprocess.Popen] = []
        try:
            demo_providers_apply(fleet.providers)
            user, password = demo_user_ensure(var)
            signal.signal(signal.SIGTERM, _interrupt)
            if not o["no_demo"]:
                self.stdout.write(f"Importing {o['demo_weddings']} demo weddings (files generated once into {var})...")
                weddings = demo_weddings_ensure(var_dir=var, count=o["demo_weddings"])
            manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
            children.append(subprocess.Popen([*manage, "rqcron", "console.cron"]))  # probes, snapshots, costs
            children.append(subprocess.Popen([*manage, "rqworker", *settings.QUEUE_NAMES, "--with-scheduler"]))
            # Probes get a worker of their own: behind a long upload or snapshot job they would come too late.
            children.append(subprocess.Popen([*manage, "rqworker", settings.WEDBACKUP_HEALTH_QUEUE]))
            children.append(subprocess.Popen([*manage, "runserver", o["addr"], "--noreload"]))
            # New files in wedding-day weddings' folders and folders dropped into the inbox, backed up as they settle.
            children.append(subprocess.Popen([*manage, "watch_sources"]))
            if not o["no_demo"]:
                self.stdout.write("Backing up the demo weddings with the workers...")
                demo = demo_fleet_load(weddings=weddings)
                self.stdout.write(f"Demo fleet: {len(demo.weddings)} weddings ({demo.backed_up} backed up now), "
                                  f"{demo.proposals} cost proposals, {demo.history} past cost snapshots computed.")
                for problem in [*demo.jobs_not_succeeded, *demo.class_changes_failed]:
                    self.stdout.write(self.style.WARNING(f"  {problem[:300]}"))
            self.stdout.write(self.style.SUCCESS(
                f"\nWedBackup console: http://{o['addr']}/   admin: http://{o['addr']}/admin/\n"
                f"Log in as {user} / {password}\nCtrl-C stops everything.\n"))
            while all(c.poll() is None for c in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            # A second Ctrl-C (or SIGTERM) must not cut the clean-up short and orphan the servers.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
            fleet.stop()
            self.stdout.write("Stopped.")
