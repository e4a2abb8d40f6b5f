"""Experiment only: manage.py with the engine fixes proposed in RESULTS.md applied at runtime (backups/ untouched).

    DB_CONN_MAX_AGE=300 .venv/bin/python bench/backup.py --worker-script bench/engine_fixes_experiment.py

BENCH_FIXES (default "backend,redis,preload") picks the fixes: one backend per provider per process, one
Redis client per process for the upload slots, the SDKs imported and one boto3 client built before RQ forks.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) in sys.path:
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wedbackup.settings")


def apply(fixes: set[str]) -> None:
    import backups.limits as limits
    import backups.uploads as uploads

    if "backend" in fixes:
        from providers.backends import backend_for

        cache: dict = {}
        lock = threading.Lock()

        def cached_backend_for(provider):
            key = (provider.pk, provider.updated)
            with lock:
                if key not in cache:
                    cache[key] = backend_for(provider)
                return cache[key]

        uploads.backend_for = cached_backend_for
    if "redis" in fixes:
        import django_rq

        conn = django_rq.get_connection("default")

        class OneConnection:
            @staticmethod
            def get_connection(name: str = "default"):
                return conn

        limits.django_rq = OneConnection
    if "preload" in fixes:
        import boto3

        import providers.backends.azure
        import providers.backends.s3  # noqa: F401

        boto3.session.Session().client("s3", region_name="us-east-1")  # botocore's models loaded before fork


if __name__ == "__main__":
    import django

    django.setup()
    apply(set(os.environ.get("BENCH_FIXES", "backend,redis,preload").split(",")))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
