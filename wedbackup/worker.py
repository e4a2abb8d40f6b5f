"""The RQ worker class the project's ``rqworker`` uses (``settings.RQ["WORKER_CLASS"]``).

It imports what ``WEDBACKUP_WORKER_PRELOAD`` names (the job modules, and with them the cloud SDKs and boto3's
model) before it forks its first work horse, so every horse inherits them instead of importing them again
for each job. Recurring jobs are not the worker's business: rq's cron scheduler (``manage.py rqcron``) runs
them.
"""

from __future__ import annotations

import importlib
import logging

from django.conf import settings
from rq import Worker as RQWorker

log = logging.getLogger(__name__)


def worker_preload(paths: list[str]) -> None:
    """Import each ``module``, or import ``module`` and call its ``function`` for ``module:function``."""
    for path in paths:
        module, _, function = path.partition(":")
        loaded = importlib.import_module(module)
        if function:
            getattr(loaded, function)()


class Worker(RQWorker):
    def work(self, *args, **kwargs) -> bool:
        worker_preload(list(getattr(settings, "WEDBACKUP_WORKER_PRELOAD", [])))
        return super().work(*args, **kwargs)
