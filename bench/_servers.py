"""Shared helpers for the benchmarks: local servers that always stop, test data, RSS, machine facts."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The project root must come before bench/ itself: bench/costs.py would otherwise shadow the ``costs`` app.
if str(ROOT) in sys.path:
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))

from providers.localservers.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, start_azurite  # noqa: E402
from providers.localservers.base import RunningServer  # noqa: E402
from providers.localservers.gcs_emulator import ensure_bucket, start_gcs_emulator  # noqa: E402
from providers.localservers.seaweedfs import create_bucket, start_seaweedfs  # noqa: E402

MB = 1024 * 1024
ACCESS_KEY = "wedbackup-bench"
SECRET_KEY = "wedbackup-bench-secret"


@dataclass
class Servers:
    """Starts local servers on demand under ``workdir``; ``stop`` kills every one it started."""

    workdir: Path
    running: dict[str, RunningServer] = field(default_factory=dict)

    def seaweedfs(self) -> RunningServer:
        if "seaweedfs" not in self.running:
            self.running["seaweedfs"] = start_seaweedfs(self.workdir / "seaweedfs", access_key=ACCESS_KEY,
                                                        secret_key=SECRET_KEY)
        return self.running["seaweedfs"]

    def azurite(self) -> RunningServer:
        if "azurite" not in self.running:
            self.running["azurite"] = start_azurite(self.workdir / "azurite")
        return self.running["azurite"]

    def gcs(self) -> RunningServer:
        if "gcs" not in self.running:
            self.running["gcs"] = start_gcs_emulator(self.workdir / "gcs")
        return self.running["gcs"]

    def cpu_seconds(self) -> float:
        """CPU used so far by every server we started (each runs in its own process group)."""
        return sum(self.cpu_by_server().values())

    def cpu_by_server(self) -> dict[str, float]:
        """CPU used so far by each server we started, by name."""
        return {name: group_cpu_seconds(s.proc.pid) for name, s in self.running.items() if s.proc is not None}

    def stop(self) -> None:
        for server in self.running.values():
            with contextlib.suppress(Exception):
                server.stop()
        self.running.clear()

    def wipe(self) -> None:
        """Stop every server and delete what they stored: the next call starts each afresh, empty (the disk
        a full-size run needs is then the largest phase's, not the sum of them all)."""
        self.stop()
        for name in ("seaweedfs", "azurite", "gcs"):
            shutil.rmtree(self.workdir / name, ignore_errors=True)

    # -- buckets and the credentials a backend / rclone needs ------------------
    def s3_bucket(self, name: str) -> dict:
        server = self.seaweedfs()
        create_bucket(server, name)
        return {"bucket": name, "endpoint": str(server.extra["endpoint"]), "region": str(server.extra["region"]),
                "credentials": {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}}

    def azure_container(self, name: str) -> dict:
        from azure.storage.blob import BlobServiceClient

        server = self.azurite()
        creds = {"account_name": DEV_ACCOUNT_NAME, "account_key": DEV_ACCOUNT_KEY}
        BlobServiceClient(str(server.extra["endpoint"]), credential=creds).create_container(name)
        return {"bucket": name, "endpoint": str(server.extra["endpoint"]), "credentials": creds}

    def gcs_bucket(self, name: str) -> dict:
        server = self.gcs()
        ensure_bucket(server, name)
        return {"bucket": name, "endpoint": str(server.extra["endpoint"]), "credentials": {"anonymous": True},
                "options": {"project": str(server.extra["project"])}}


@contextlib.contextmanager
def local_servers(workdir: Path) -> Iterator[Servers]:
    """Servers that are stopped on return, on error, on Ctrl-C and on SIGTERM (turned into KeyboardInterrupt)."""

    def on_term(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    servers = Servers(Path(workdir))
    try:
        yield servers
    finally:
        servers.stop()
        signal.signal(signal.SIGTERM, previous)


def write_random_file(path: Path, size: int) -> str:
    """Incompressible bytes (nothing can dedupe or compress them); returns the sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(4 * MB, left))
            digest.update(chunk)
            fh.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def peak_rss_kb() -> int:
    """VmHWM of this process: the resident-set high-water mark since start or the last reset."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """Linux resets VmHWM to the current RSS when 5 is written to clear_refs."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def run_child(argv: list[str], *, env: dict[str, str] | None = None, stdin: str = "") -> tuple[int, str, int]:
    """Run a child to completion: (exit code, its stdout, its peak RSS in KiB from wait4). Killed on Ctrl-C."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, cwd=ROOT)
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
        out = proc.stdout.read()
        proc.stdout.close()
        code, rss = wait_rss(proc)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(ChildProcessError):
            proc.wait()
        raise
    return code, out, rss


def wait_usage(proc: subprocess.Popen) -> tuple[int, resource.struct_rusage]:
    """Reap ``proc`` with wait4: (exit code, rusage of that child and of the children it reaped itself)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage


def wait_rss(proc: subprocess.Popen) -> tuple[int, int]:
    """(exit code, peak RSS in KiB of that child, or of its largest reaped descendant)."""
    code, usage = wait_usage(proc)
    return code, usage.ru_maxrss


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by a process group (a server or worker we started): its live
    processes, and the children they have reaped (an RQ worker's finished work horses)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # pgrp
                total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, str]:
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout.strip()
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "nproc": str(os.cpu_count()), "cpu": cpu, "load": load,
            "python": platform.python_version(), "kernel": platform.release(), "free -h": mem}


def print_machine() -> None:
    info = machine()
    print(f"# {info['date']}  nproc={info['nproc']}  cpu={info['cpu']}  python {info['python']}  "
          f"kernel {info['kernel']}  load average {info['load']} (other processes skew every figure)")
    print("\n".join(f"#   {line}" for line in info["free -h"].splitlines()))


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                       strict=True)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
