"""Run `manage.py <command>` as a real process on the test's database and Redis: on a pseudo-terminal (what a person
at a shell sees) or with pipes (what a script sees), while the test runs the workers in its own process."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
ESC = "\x1b["
BAR = "━"  # rich's bar
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Run:
    code: int
    out: str  # on a terminal: stdout and stderr as the terminal received them
    err: str = ""

    @property
    def lines(self) -> list[str]:
        """stdout as a person reads it: escape codes and blank lines gone."""
        return [line for line in ANSI.sub("", self.out).replace("\r", "\n").splitlines() if line.strip()]

    @property
    def last_line(self) -> str:
        return self.lines[-1] if self.lines else ""


def command_env() -> dict[str, str]:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_INTERACTIVE",
                                                           "TTY_COMPATIBLE", "COLUMNS", "LINES")}
    return {**env, "DJANGO_SETTINGS_MODULE": "wedbackup.settings", "TERM": "xterm-256color",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": settings.RQ_QUEUES["default"]["URL"]}


def run_command(*args: str, tty: bool, while_running: Callable[[], None] | None = None,
                timeout: float = 180) -> Run:
    """The command's exit code and output; ``while_running`` is called again and again until it exits (e.g. a
    burst worker, so that `--wait` has something to wait for)."""
    argv = [sys.executable, "manage.py", *args]
    if not tty:
        proc = subprocess.Popen(argv, cwd=ROOT, env=command_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        out, err = _drive(proc, while_running, timeout, lambda: proc.communicate(timeout=timeout))
        return Run(proc.returncode, out.decode(), err.decode())
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(argv, cwd=ROOT, env=command_env(), stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # a full pty buffer would block the command's writes
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the command exited and closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        _drive(proc, while_running, timeout, lambda: proc.wait(timeout=timeout))
        reader.join(timeout=10)
    finally:
        os.close(master)
    return Run(proc.returncode, b"".join(chunks).decode(errors="replace"))


def _drive(proc: subprocess.Popen, while_running: Callable[[], None] | None, timeout: float, finish):
    deadline = time.monotonic() + timeout
    if while_running is not None:
        while proc.poll() is None and time.monotonic() < deadline:
            while_running()
            time.sleep(0.2)
    try:
        return finish()
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"{proc.args} did not finish within {timeout}s") from None
