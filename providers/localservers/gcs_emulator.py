"""gcp-storage-emulator (a pure-Python GCS JSON API server) as a local Google Cloud Storage.

It validates declared md5/crc32c like GCS does, which makes it good for integrity tests, but it is slow
(~16 MB/s, single-threaded) and does not persist a storage-class rewrite: keep test files small.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .base import RunningServer, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EMULATOR_BIN = PROJECT_ROOT / ".venv" / "bin" / "gcp-storage-emulator"
PROJECT = "wedbackup-local"


def emulator_binary() -> Path:
    if not EMULATOR_BIN.exists():
        raise RuntimeError(f"{EMULATOR_BIN} is missing: pip install gcp-storage-emulator into the project's .venv")
    return EMULATOR_BIN


def wait_for_http(url: str, *, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers 200 (the emulator binds its port a moment before it serves)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback URL we built
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last!r})")


@dataclass
class GCSEmulatorServer(RunningServer):
    """A RunningServer whose start (and so restart) returns only once the emulator answers HTTP."""

    def start(self, *, timeout: float = 60.0) -> GCSEmulatorServer:
        started = time.monotonic()
        super().start(timeout=timeout)
        try:
            wait_for_http(f"{self.url}/", timeout=max(1.0, timeout - (time.monotonic() - started)))
        except Exception:
            self.stop()
            raise
        return self


def start_gcs_emulator(workdir: Path, *, port: int | None = None, timeout: float = 30.0) -> GCSEmulatorServer:
    """Start the emulator on a free loopback port with its data under ``workdir``.

    ``extra`` carries ``endpoint`` (for ``BackendConfig.endpoint`` with ``{"anonymous": True}``
    credentials) and ``project``. The emulator checks no credentials at all.
    """
    workdir = Path(workdir)
    data = workdir / "gcs-data"
    data.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [str(emulator_binary()), "-d", str(data), "start", "--host", "127.0.0.1", "--port", str(port), "-q"]
    server = GCSEmulatorServer(
        name="gcs-emulator", argv=argv, port=port, workdir=workdir,
        extra={"endpoint": f"http://127.0.0.1:{port}", "project": PROJECT},
    )
    return server.start(timeout=timeout)


def gcs_client(server: RunningServer):  # -> google.cloud.storage.Client (imported lazily: the SDK is heavy)
    """An anonymous SDK client on the emulator, for creating buckets in tests and ``make run``."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=str(server.extra["project"]), credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": str(server.extra["endpoint"])})


def ensure_bucket(server: RunningServer, name: str) -> None:
    client = gcs_client(server)
    if not client.bucket(name).exists():
        client.create_bucket(name)
