"""Dropbox's route errors in the backend contract's vocabulary."""

from __future__ import annotations

from typing import Any

from dropbox import exceptions as dbx

from .base import IntegrityError, ObjectNotFound, PermanentError, ProviderError, TransientError


def error_tags(error: Any) -> list[str]:
    """The tag path of a route error, e.g. ['path', 'conflict', 'file'] (as in error_summary).

    Stone unions offer only ``is_<tag>()`` checks, so the generic walk reads their ``_tag``/``_value``.
    """
    tags: list[str] = []
    while error is not None and len(tags) < 8:
        if hasattr(error, "_tag"):
            tags.append(error._tag)
            error = error._value
        else:
            error = getattr(error, "reason", None)  # UploadWriteFailed wraps a WriteError
    return tags


def dropbox_error(exc: dbx.ApiError, what: str, *, name: str) -> ProviderError:
    tags = error_tags(exc.error)
    summary = f"{name}: Dropbox could not {what}: {'/'.join(tags)}"
    if "lookup_failed" in tags or "incorrect_offset" in tags:
        return TransientError(f"{summary} (the upload session was lost; upload again)")
    if "insufficient_space" in tags:
        return PermanentError(f"{summary} (the Dropbox account is full: free space or upgrade the plan)")
    if "content_hash_mismatch" in tags:
        return IntegrityError(f"{summary} (bytes were corrupted on the way to Dropbox)")
    if "too_many_write_operations" in tags:
        return TransientError(summary)
    if "not_found" in tags:
        return ObjectNotFound(summary)
    return PermanentError(summary)
