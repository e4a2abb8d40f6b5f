import importlib
import sys

from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        if "rqworker" in sys.argv[1:3]:
            # An RQ worker forks a work horse per job, and the horse imports the job's module: imported here,
            # in the worker, the SDKs and the boto3 model are loaded once and inherited by every horse.
            importlib.import_module("backups.tasks")
