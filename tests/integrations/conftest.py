"""Provider rows on the real local servers (fresh buckets per test), for end-to-end tests."""

from __future__ import annotations

import uuid

import pytest

from providers.localservers.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from providers.localservers.gcs_emulator import ensure_bucket
from providers.localservers.seaweedfs import create_bucket
from providers.models import Provider
from tests.fixtures.azure import azure_service
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, ensure_running


@pytest.fixture
def cloud_providers(seaweedfs, gcs_emulator, azurite, settings):
    """aws_s3 (SeaweedFS), gcs (emulator) and azure_blob (Azurite) providers in US regions."""
    settings.WEDBACKUP_PART_SIZE = 5 * 1024 * 1024
    ensure_running(seaweedfs)
    if not azurite.running:
        azurite.start()
    name = f"wb-{uuid.uuid4().hex[:16]}"
    create_bucket(seaweedfs, name)
    ensure_bucket(gcs_emulator, name)
    azure_service(azurite).create_container(name)
    return {
        "s3": Provider.objects.create(
            name="s3-us-east", kind="aws_s3", region="us-east-1", bucket=name, endpoint=seaweedfs.extra["endpoint"],
            credentials={"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}),
        "gcs": Provider.objects.create(
            name="gcs-us-central", kind="gcs", region="us-central1", bucket=name,
            endpoint=gcs_emulator.extra["endpoint"], credentials={"anonymous": True},
            options={"project": gcs_emulator.extra["project"]}),
        "azure": Provider.objects.create(
            name="azure-east-us", kind="azure_blob", region="eastus", bucket=name,
            endpoint=azurite.extra["endpoint"],
            credentials={"account_name": DEV_ACCOUNT_NAME, "account_key": DEV_ACCOUNT_KEY}),
    }
