"""RQ job entry points: take primary keys, call one function.

The backend modules are imported here, once, so that a forking worker's jobs inherit the SDKs already
imported instead of paying for the import in every job (the worker imports this module before it forks:
see ``wedbackup.worker.Worker``); the boto3 session and its S3 model are loaded here for the same reason."""

from providers.backends import BACKENDS, backend_class
from providers.backends.s3 import warm_session

from .backup import backup_finish, backup_round, upload_batch
from .ingest import import_job
from .restore import restore_job
from .verify import verify_job

__all__ = ["backup_finish", "backup_round", "import_job", "restore_job", "upload_batch", "verify_job"]

for _kind in BACKENDS:
    backend_class(_kind)
warm_session()
