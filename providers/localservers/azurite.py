"""Azurite (Microsoft's Azure Storage emulator), blob service only."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from .base import RunningServer, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BIN = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-blob"

# Azurite's well-known development account. Microsoft publishes it; it opens nothing outside an emulator.
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # noqa: S105


class AzuriteServer(RunningServer):
    """Stops with SIGTERM first: Azurite saves its metadata every 5 s, so SIGKILL loses recent writes."""

    def stop(self, *, grace: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        super().stop()


def azurite_binary() -> Path:
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"{AZURITE_BIN} is missing: run `npm install` in {PROJECT_ROOT}")
    return AZURITE_BIN


def start_azurite(workdir: Path, *, port: int | None = None) -> RunningServer:
    """Start azurite-blob on a free loopback port; data under ``workdir``.

    ``--skipApiVersionCheck``: Azurite lags the SDK's API version. ``--loose`` ignores headers it does not
    implement; it still checks SharedKey signatures. ``extra`` carries the account and its endpoint.
    """
    port = port or free_port()
    data = Path(workdir) / "azurite-data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        str(azurite_binary()), "--blobHost", "127.0.0.1", "--blobPort", str(port),
        "--location", str(data), "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent",
    ]
    server = AzuriteServer(
        name="azurite", argv=argv, port=port, workdir=Path(workdir),
        extra={
            "account_name": DEV_ACCOUNT_NAME,
            "account_key": DEV_ACCOUNT_KEY,
            "endpoint": f"http://127.0.0.1:{port}/{DEV_ACCOUNT_NAME}",
        },
    )
    return server.start()


def connection_string(server: RunningServer) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};"
        f"BlobEndpoint={server.extra['endpoint']};"
    )
