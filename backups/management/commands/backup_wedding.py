from django.core.management.base import BaseCommand
from django.db import transaction

from backups.models import BackupJob
from backups.queries import wedding_distribution
from backups.tasks import backup_start
from wedbackup.progress import CommandProgress, add_progress_arguments, human_bytes, human_seconds, progress_wanted

from ._output import emit, exit_codes_epilog, fail, job_code, jobs_wait, wedding_or_error


class Command(BaseCommand):
    help = "Back a wedding up to its providers through the RQ workers; --wait follows the job to its end."

    def add_arguments(self, parser):
        parser.add_argument("wedding_id", type=int)
        parser.add_argument("--wait", action="store_true", help="Wait for the job, with progress on a terminal.")
        parser.add_argument("--timeout", type=float, default=3600, help="Seconds --wait waits (default 3600).")
        parser.add_argument("--json", action="store_true")
        add_progress_arguments(parser)
        exit_codes_epilog(parser)

    def handle(self, *args, **o):
        wedding = wedding_or_error(o["wedding_id"])
        show = o["wait"] and progress_wanted(stdout=self.stdout, stderr=self.stderr, as_json=o["json"],
                                             disabled=o["no_progress"])
        with CommandProgress(show=show, description="backing up", with_bytes=True) as progress:
            with transaction.atomic():
                job = backup_start(wedding=wedding)
            if o["wait"]:
                [job] = jobs_wait([job], timeout=o["timeout"], progress=progress, label="backing up")
        data = {"job": job.pk, "status": job.status, "files_done": job.files_done, "files_failed": job.files_failed,
                "files_planned": job.files_planned, "bytes_done": job.bytes_done, "error": job.error_summary}
        emit(self, data, as_json=o["json"], lines=[f"Backup job {job.pk}: {job.status}"]
             + ([f"  {job.error_summary}"] if job.error_summary else []),
             summary=self._summary(job, wedding, seconds=progress.elapsed) if o["wait"] else
             f"backup job {job.pk} queued on '{job.queue}' for {wedding.slug}")
        if o["wait"] and job.status != BackupJob.Status.SUCCEEDED:
            raise fail(f"backup ended {job.status}", code=job_code(job.status))

    @staticmethod
    def _summary(job: BackupJob, wedding, *, seconds: float) -> str:
        providers = len({row["provider__name"] for row in wedding_distribution(wedding)})
        below = job.result.get("below_policy", job.files_failed)
        verb = "backed up" if job.status != BackupJob.Status.FAILED else "backup failed:"
        return (f"{verb} {job.files_done} of {job.files_planned} files ({human_bytes(job.bytes_done)} uploaded) "
                f"to {providers} provider(s) in {human_seconds(seconds)}; {below} below policy")
