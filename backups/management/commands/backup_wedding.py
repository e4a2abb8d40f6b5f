import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from backups.models import BackupJob
from backups.tasks import backup_start

from ._output import emit, wedding_or_error

POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = "Back a wedding up to its providers through the RQ workers."

    def add_arguments(self, parser):
        parser.add_argument("wedding_id", type=int)
        parser.add_argument("--wait", action="store_true", help="Wait for the job and show progress.")
        parser.add_argument("--timeout", type=float, default=3600)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        wedding = wedding_or_error(o["wedding_id"])
        with transaction.atomic():
            job = backup_start(wedding=wedding)
        if o["wait"]:
            job = self._wait(job, o["timeout"], show=not o["json"])
        data = {"job": job.pk, "status": job.status, "files_done": job.files_done, "files_failed": job.files_failed,
                "files_planned": job.files_planned, "bytes_done": job.bytes_done, "error": job.error_summary}
        emit(self, data, as_json=o["json"], lines=[f"Backup job {job.pk}: {job.status}"]
             + ([f"  {job.error_summary}"] if job.error_summary else []))
        if o["wait"] and job.status not in (BackupJob.Status.SUCCEEDED,):
            raise CommandError(f"backup ended {job.status}")

    def _wait(self, job: BackupJob, timeout: float, *, show: bool) -> BackupJob:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if show:
                bar = "#" * (job.progress_percent // 4)
                self.stdout.write(f"\r[{bar:<25}] {job.progress_percent:3d}% {job.status}", ending="")
                self.stdout.flush()
            if not job.is_active:
                if show:
                    self.stdout.write("")
                return job
            time.sleep(POLL_SECONDS)
        raise CommandError(f"job {job.pk} still {job.status} after {timeout:.0f}s (is a worker running?)")
