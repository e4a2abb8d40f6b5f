"""Progress for the long commands: a rich bar on stderr while a person watches, nothing otherwise.

Shown only when stdout and stderr are both terminals and neither ``--json`` nor ``--no-progress`` was given, so a
pipe, a log file or a script sees the same plain (or JSON) stdout as before. The bar goes to stderr and is cleared
when done; the command then prints its one-line summary on stdout."""

from __future__ import annotations

import argparse
import time
from typing import Any, Self

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


def add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true",
                        help="No progress bar, even on a terminal (it is off anyway when piped or with --json).")


def progress_wanted(*, stdout: Any, stderr: Any, as_json: bool, disabled: bool) -> bool:
    """A terminal person watching: both streams are TTYs (a Django OutputWrapper or a plain file)."""
    return not (as_json or disabled) and _isatty(stdout) and _isatty(stderr)


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def human_bytes(size: int) -> str:
    return decimal(size)


def human_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


class CommandProgress:
    """One bar of files (and bytes when the work is measured in bytes), with speed and time left.

    ``show=False`` makes every method a no-op, so commands call it the same way whether or not anyone watches.
    Without a total the bar pulses and counts what is done (``12/?``)."""

    def __init__(self, *, show: bool, description: str, unit: str = "files", with_bytes: bool = False,
                 console: Console | None = None) -> None:
        self.started = time.monotonic()
        self.with_bytes = with_bytes
        self.unit = unit
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._files = (0, None)
        if not show:
            return
        console = console or Console(stderr=True)
        columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn()]
        if with_bytes:
            columns += [TextColumn("{task.fields[files]}"), DownloadColumn(), TransferSpeedColumn()]
        else:
            columns += [MofNCompleteColumn(), TextColumn(unit)]
        columns += [TimeElapsedColumn(), TimeRemainingColumn()]
        # The bar never takes over stdout: what a command prints there stays its own.
        self._progress = Progress(*columns, console=console, transient=True, redirect_stdout=False,
                                  redirect_stderr=False)
        self._task = self._progress.add_task(description, total=None, files="")

    @property
    def shown(self) -> bool:
        return self._progress is not None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, *, files_done: int, files_total: int | None = None, bytes_done: int = 0,
               bytes_total: int | None = None, status: str | None = None) -> None:
        """The whole picture, as a poller sees it (a job row)."""
        if self._progress is None or self._task is None:
            return
        self._files = (files_done, files_total)
        fields: dict[str, Any] = {"files": self._files_text()}
        if status is not None:
            fields["description"] = status
        if self.with_bytes:
            self._progress.update(self._task, completed=bytes_done, total=bytes_total or None, **fields)
        else:
            self._progress.update(self._task, completed=files_done, total=files_total, **fields)

    def advance(self, *, files: int = 1, bytes_: int = 0) -> None:
        """One more item done, as a callback hears of it."""
        if self._progress is None or self._task is None:
            return
        done, total = self._files
        self._files = (done + files, total)
        self._progress.update(self._task, advance=bytes_ if self.with_bytes else files, files=self._files_text())

    def total(self, *, files: int | None, bytes_: int | None = None) -> None:
        if self._progress is None or self._task is None:
            return
        self._files = (self._files[0], files)
        self._progress.update(self._task, total=(bytes_ or None) if self.with_bytes else files,
                              files=self._files_text())

    def _files_text(self) -> str:
        done, total = self._files
        return f"{done}/{total} {self.unit}" if total is not None else f"{done} {self.unit}"
