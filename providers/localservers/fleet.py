"""The local fleet `make run` starts: SeaweedFS (S3 + Wasabi), Azurite, the GCS emulator and a watched folder."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .azurite import start_azurite
from .base import RunningServer
from .gcs_emulator import ensure_bucket, start_gcs_emulator
from .seaweedfs import s3_client, start_seaweedfs


@dataclass
class LocalFleet:
    servers: dict[str, RunningServer] = field(default_factory=dict)
    providers: list[dict[str, Any]] = field(default_factory=list)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def _s3_bucket(server: RunningServer, name: str) -> str:
    client = s3_client(server)
    if name not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=name)
    return name


def _azure_container(server: RunningServer, name: str) -> str:
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient(str(server.extra["endpoint"]), credential={
        "account_name": server.extra["account_name"], "account_key": server.extra["account_key"]})
    with contextlib.suppress(ResourceExistsError):
        client.create_container(name)
    return name


def fleet_start(workdir: Path) -> LocalFleet:
    """Start every local server and describe the demo providers that point at them."""
    workdir = Path(workdir)
    fleet = LocalFleet()
    try:
        key, secret = "wedbackup-local", secrets.token_urlsafe(24)
        s3 = fleet.servers["seaweedfs"] = start_seaweedfs(workdir / "seaweedfs", access_key=key, secret_key=secret)
        azure = fleet.servers["azurite"] = start_azurite(workdir / "azurite")
        gcs = fleet.servers["gcs"] = start_gcs_emulator(workdir / "gcs")
    except Exception:
        fleet.stop()
        raise
    for name in ("wedbackup-us", "wedbackup-eu", "wedbackup-wasabi-eu"):
        _s3_bucket(s3, name)
    for name in ("wedbackup-eu", "wedbackup-us"):
        _azure_container(azure, name)
    for name in ("wedbackup-us", "wedbackup-eu"):
        ensure_bucket(gcs, name)
    fleet.providers = fleet_describe(
        s3={"endpoint": str(s3.extra["endpoint"]), "credentials": {"access_key_id": key, "secret_access_key": secret}},
        azure={"endpoint": str(azure.extra["endpoint"]), "credentials": {
            "account_name": azure.extra["account_name"], "account_key": azure.extra["account_key"]}},
        gcs={"endpoint": str(gcs.extra["endpoint"]), "project": str(gcs.extra["project"])},
        folder=workdir / "carbonite-watched")
    return fleet


def fleet_describe(*, s3: dict, azure: dict, gcs: dict, folder: Path,
                   prefix: str = "wedbackup") -> list[dict[str, Any]]:
    """The demo providers on these servers: buckets ``<prefix>-us``, ``<prefix>-eu`` (S3, Azure, GCS) and
    ``<prefix>-wasabi-eu`` (S3), which the caller creates."""
    gcs_options = {"project": gcs["project"]}
    return [
        {"name": "s3-us-east", "kind": "aws_s3", "region": "us-east-1", "bucket": f"{prefix}-us", **s3},
        {"name": "s3-eu-west", "kind": "aws_s3", "region": "eu-west-1", "bucket": f"{prefix}-eu", **s3},
        {"name": "wasabi-eu-central", "kind": "wasabi", "region": "eu-central-1", "bucket": f"{prefix}-wasabi-eu",
         **s3},
        {"name": "azure-west-europe", "kind": "azure_blob", "region": "westeurope", "bucket": f"{prefix}-eu",
         **azure},
        {"name": "azure-east-us", "kind": "azure_blob", "region": "eastus", "bucket": f"{prefix}-us", **azure},
        {"name": "gcs-us-central", "kind": "gcs", "region": "us-central1", "bucket": f"{prefix}-us",
         "endpoint": gcs["endpoint"], "credentials": {"anonymous": True}, "options": gcs_options},
        {"name": "gcs-europe-west", "kind": "gcs", "region": "europe-west4", "bucket": f"{prefix}-eu",
         "endpoint": gcs["endpoint"], "credentials": {"anonymous": True}, "options": gcs_options},
        {"name": "carbonite-folder", "kind": "watched_folder", "region": "us-east-1", "bucket": str(folder),
         "options": {"create": True}, "notes": "Carbonite has no upload API: its agent backs up this folder."},
    ]
