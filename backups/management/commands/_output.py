"""Shared by the commands: exit codes, a result as JSON or as lines a person reads ending with a one-line summary,
and waiting for job rows with a progress bar."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backups.models import BackupJob, Wedding
from wedbackup.progress import CommandProgress

# The same in every command, in the README and in each command's --help.
EXIT_OK = 0  # everything done
EXIT_PARTIAL = 1  # done, but some files failed or problems were found (listed above the summary)
EXIT_USAGE = 2  # bad arguments or input: unknown wedding or provider, missing folder, wrong confirmation
EXIT_NOTHING_DONE = 3  # nothing could be done: the job failed, every file failed, or it was refused
EXIT_TIMEOUT = 4  # gave up waiting (--timeout); the job goes on in the workers
EXIT_CODES_HELP = ("Exit codes: 0 done; 1 partial (some files failed or problems found); 2 usage or input error; "
                   "3 nothing could be done (failed or refused); 4 gave up waiting, the job goes on.")


def exit_codes_epilog(parser) -> None:
    parser.epilog = EXIT_CODES_HELP


def emit(command: BaseCommand, data: dict[str, Any], *, as_json: bool, lines: list[str], summary: str = "") -> None:
    """JSON (with the summary as a field) or the detail lines, then the summary as the last line."""
    if as_json:
        command.stdout.write(json.dumps({**data, "summary": summary} if summary else data, indent=2, default=str,
                                        ensure_ascii=False))
    else:
        for line in [*lines, *([summary] if summary else [])]:
            command.stdout.write(line)


def fail(message: str, *, code: int) -> CommandError:
    return CommandError(message, returncode=code)


def outcome_code(*, done: int, failed: int) -> int:
    """0 when nothing failed, 1 when some did, 3 when nothing was done and something failed."""
    if not failed:
        return EXIT_OK
    return EXIT_PARTIAL if done else EXIT_NOTHING_DONE


def job_code(status: str) -> int:
    return {BackupJob.Status.SUCCEEDED: EXIT_OK, BackupJob.Status.PARTIAL: EXIT_PARTIAL}.get(status, EXIT_NOTHING_DONE)


def wedding_or_error(wedding_id: int):
    """The wedding, or a CommandError a person understands."""
    try:
        return Wedding.objects.get(pk=wedding_id)
    except Wedding.DoesNotExist:
        raise fail(f"no wedding with id {wedding_id}", code=EXIT_USAGE) from None


def jobs_wait(jobs: Sequence[BackupJob], *, timeout: float, progress: CommandProgress, label: str,
              poll_seconds: float = 0.5) -> list[BackupJob]:
    """Poll the job rows until none is queued or running, the bar showing their summed files and bytes."""
    deadline = time.monotonic() + timeout
    while True:
        for job in jobs:
            job.refresh_from_db()
        active = [j for j in jobs if j.is_active]
        progress.update(files_done=sum(j.files_done + j.files_failed for j in jobs),
                        files_total=sum(j.files_planned for j in jobs) or None,
                        bytes_done=sum(j.bytes_done for j in jobs), bytes_total=sum(j.bytes_planned for j in jobs),
                        status=f"{label} ({active[0].status if active else 'done'})")
        if not active:
            return list(jobs)
        if time.monotonic() >= deadline:
            names = ", ".join(f"{j.pk} ({j.status})" for j in active)
            raise fail(f"gave up after {timeout:.0f}s; still active: job {names} (is a worker running?)",
                       code=EXIT_TIMEOUT)
        time.sleep(poll_seconds)
