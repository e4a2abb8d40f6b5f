from django.core.management.base import BaseCommand

from backups.management.commands._output import (
    EXIT_OK,
    emit,
    exit_codes_epilog,
    fail,
    job_code,
    jobs_wait,
    outcome_code,
    wedding_or_error,
)
from backups.models import BackupJob
from costs.proposals import optimizations_refresh
from costs.tasks import optimization_apply
from wedbackup.progress import CommandProgress, add_progress_arguments, human_bytes, human_seconds, progress_wanted


class Command(BaseCommand):
    help = ("Propose cost optimisations (checked against the backup policy); --apply enqueues them on 'bulk', "
            "--wait follows the apply jobs to their end.")

    def add_arguments(self, parser):
        parser.add_argument("--wedding", type=int, help="Only this wedding (id)")
        parser.add_argument("--apply", action="store_true", help="Enqueue every appliable proposal")
        parser.add_argument("--wait", action="store_true", help="With --apply: wait for the apply jobs.")
        parser.add_argument("--timeout", type=float, default=3600, help="Seconds --wait waits (default 3600).")
        parser.add_argument("--json", action="store_true", help="Print JSON")
        parser.add_argument("--no-measure", action="store_true", help="Skip sampling files for compressibility")
        add_progress_arguments(parser)
        exit_codes_epilog(parser)

    def handle(self, *args, **o):
        target = wedding_or_error(o["wedding"]) if o["wedding"] is not None else None
        show = progress_wanted(stdout=self.stdout, stderr=self.stderr, as_json=o["json"], disabled=o["no_progress"])
        with CommandProgress(show=show, description="proposing", with_bytes=True) as progress:
            rows = optimizations_refresh(wedding=target, measure=not o["no_measure"])
            jobs = {opt.pk: optimization_apply(optimization=opt) for opt in rows} if o["apply"] else {}
            queued = [job for job in jobs.values() if job is not None]
            if o["wait"] and queued:
                queued = jobs_wait(queued, timeout=o["timeout"], progress=progress, label="applying")
        out = [{"id": opt.pk, "wedding": opt.wedding_id, "kind": opt.kind, "summary": opt.summary,
                "current_monthly": str(opt.current_monthly), "new_monthly": str(opt.new_monthly),
                "one_off_cost": str(opt.one_off_cost), "payback_months": opt.payback_months,
                "job": getattr(jobs.get(opt.pk), "pk", None)} for opt in rows]
        if o["wait"]:
            for row in out:
                row["job_status"] = next((j.status for j in queued if j.pk == row["job"]), None)
        lines = [f"#{r['id']} wedding {r['wedding']} {r['kind']}: {r['summary']} ${r['current_monthly']} -> "
                 f"${r['new_monthly']}/month, one-off ${r['one_off_cost']}"
                 + (f"  job #{r['job']}" if r["job"] else "") + (f" {r['job_status']}" if r.get("job_status") else "")
                 for r in out]
        saving = sum((opt.current_monthly - opt.new_monthly for opt in rows), start=0)
        summary = f"{len(out)} proposal(s), saving ${saving:.2f}/month"
        if o["apply"] and not o["wait"]:
            summary += f"; {len(queued)} apply job(s) queued on 'bulk'"
        elif o["apply"]:
            done = sum(j.status == BackupJob.Status.SUCCEEDED for j in queued)
            summary += (f"; applied {done} of {len(queued)} ({sum(j.files_done for j in queued)} step(s), "
                        f"{human_bytes(sum(j.bytes_done for j in queued))}) in {human_seconds(progress.elapsed)}")
        emit(self, {"proposals": out}, as_json=o["json"], lines=lines, summary=summary)
        if o["wait"] and (failed := [j for j in queued if job_code(j.status) != EXIT_OK]):
            code = outcome_code(done=sum(j.status != BackupJob.Status.FAILED for j in queued), failed=len(failed))
            raise fail(f"{len(failed)} apply job(s) did not succeed", code=code)
