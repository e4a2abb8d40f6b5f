"""RQ job entry points: take primary keys, call one function. Kept tiny so workers import little."""

from .backup import backup_finish, backup_round, upload_batch
from .ingest import import_job
from .verify import verify_job

__all__ = ["backup_finish", "backup_round", "import_job", "upload_batch", "verify_job"]
