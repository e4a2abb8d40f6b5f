"""Why an upload failed, in words for staff, and whether the failure is the file's for good."""

from __future__ import annotations

from .copysource import DISK_FULL_ERRNOS


class SourceChanged(Exception):
    """The file on disk no longer matches the catalogued sha256: re-import before backing it up."""


class CopiesOutOfReach(Exception):
    """The source is gone or changed and the verified copies that hold the catalogued bytes could not be read
    now: not a permanent failure of the file on this provider (a later round reads them)."""


def error_is_permanent(error: BaseException) -> bool:
    """A source that is gone or changed (with no copy to stand in) fails the file on that provider for good; a
    full disk, an unreachable copy or a provider's transient error does not."""
    return (isinstance(error, SourceChanged | OSError) and getattr(error, "errno", None) not in DISK_FULL_ERRNOS
            or bool(getattr(error, "permanent", False)))


def error_describe(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    if isinstance(error, FileNotFoundError):
        return "source file is missing; restore it to the folder or re-import the wedding"
    if isinstance(error, PermissionError):
        return "source file cannot be read (permission denied)"
    return f"{type(error).__name__}: {error}"
