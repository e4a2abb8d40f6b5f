"""Send a restore zip and remove it once the response is closed (a zip is downloaded once)."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.http import FileResponse


class _RemovingFile:
    """A read-only file that deletes its job's zip folder when closed (after the last byte is sent)."""

    def __init__(self, path: Path):
        self._file = path.open("rb")
        self._path = path

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def close(self) -> None:
        self._file.close()
        discard(self._path)


def discard(path: Path) -> None:
    """Remove a zip's folder (only ever one below the zip folder)."""
    folder, root = path.parent.resolve(), Path(settings.WEDBACKUP_ZIP_DIR).resolve()
    if folder.is_relative_to(root) and folder != root:
        shutil.rmtree(folder, ignore_errors=True)


def zip_response(path: Path, filename: str, *, failed: int = 0) -> FileResponse:
    size = path.stat().st_size
    response = FileResponse(_RemovingFile(path), as_attachment=True, filename=filename,
                            content_type="application/zip")
    response["Content-Length"] = str(size)
    response["X-Restore-Failed-Files"] = str(failed)
    return response
