"""The RQ worker class the project's ``rqworker`` uses (``settings.RQ["WORKER_CLASS"]``).

It keeps the recurring chains (health probes, console snapshots) alive without anyone having to remember a
command: RQ runs a worker's maintenance tasks when it starts and every ``maintenance_interval`` (10 min), and
this worker then makes sure each chain has a pending tick. Redis here keeps nothing on disk, so after a
Redis restart the chains come back within minutes instead of staying silently stopped.

It also imports the job modules (and with them the cloud SDKs and boto3's model) before it forks its first
work horse, so every horse inherits them instead of importing them again for each job.
"""

from __future__ import annotations

import importlib
import logging

from django.conf import settings
from rq import Worker as RQWorker

log = logging.getLogger(__name__)


class Worker(RQWorker):
    def work(self, *args, **kwargs) -> bool:
        importlib.import_module("backups.tasks")
        return super().work(*args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        if not getattr(settings, "WEDBACKUP_WORKER_SCHEDULES", True):
            return
        from .periodic import schedule_all

        try:
            schedule_all()
        except Exception:  # a Redis hiccup must not stop the worker; the next maintenance run tries again
            log.exception("could not schedule the recurring jobs")
