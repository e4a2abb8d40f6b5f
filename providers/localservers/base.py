"""Start a server process on a free loopback port, wait for it, stop it by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int, *, spacing: int = 0) -> list[int]:
    """n free ports; with ``spacing``, port+spacing must be free too (SeaweedFS gRPC = HTTP + 10000)."""
    ports: list[int] = []
    while len(ports) < n:
        p = free_port()
        if p in ports or (spacing and (p + spacing > 65535 or not _is_free(p + spacing))):
            continue
        ports.append(p)
    return ports


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, *, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


@dataclass
class RunningServer:
    """A server we started. ``stop`` kills the whole process group."""

    name: str
    argv: list[str]
    port: int
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 60.0) -> RunningServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / f"{self.name}.log", "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.workdir, env={**os.environ, **self.env},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        try:
            wait_for_port(self.port, timeout=timeout, proc=self.proc)
        except Exception:
            self.stop()
            raise
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        # SIGKILL on purpose: SeaweedFS can take seconds (or hang) on SIGTERM.
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def restart(self, *, timeout: float = 60.0) -> RunningServer:
        self.stop()
        return self.start(timeout=timeout)
