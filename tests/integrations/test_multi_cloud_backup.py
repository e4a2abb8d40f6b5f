"""A wedding backed up to the local S3, GCS and Azure servers while the S3 server is stopped mid-backup."""

import datetime as dt
import uuid

import pytest
from django.core import mail

from backups import batches
from backups.ingest import wedding_import
from backups.layout import object_key
from backups.models import BackupJob, Replica
from backups.tasks import backup_start
from providers.health import health_check_all
from providers.localservers.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from providers.models import FailoverEvent, Provider
from tests.fixtures.azure import azure_service
from tests.weddings import wedding_folder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.servers]


@pytest.fixture
def fleet(cloud_providers, azurite):
    """The three clouds plus a second Azure region, so an S3 outage leaves three usable providers."""
    container = f"wb-{uuid.uuid4().hex[:16]}"
    azure_service(azurite).create_container(container)
    cloud_providers["azure_west"] = Provider.objects.create(
        name="azure-west-us", kind="azure_blob", region="westus", bucket=container,
        endpoint=azurite.extra["endpoint"],
        credentials={"account_name": DEV_ACCOUNT_NAME, "account_key": DEV_ACCOUNT_KEY})
    return cloud_providers


def verified_on(asset, *, healthy_only: bool) -> set[str]:
    replicas = Replica.objects.filter(asset=asset, status="verified", sha256=asset.sha256).select_related("provider")
    return {r.provider.name for r in replicas if not healthy_only or r.provider.status != Provider.Status.DOWN}


def test_an_s3_outage_mid_backup_fails_over_and_repair_restores_the_placement(
    tmp_path, fleet, seaweedfs, azurite, run_workers, settings, monkeypatch, capsys
):
    settings.WEDBACKUP_NOTIFY_EMAILS = ["ops@example.com"]
    settings.WEDBACKUP_BREAKER_FAILURES = 2
    settings.WEDBACKUP_BREAKER_COOLDOWN = 0
    monkeypatch.setattr(batches, "BATCH_SIZE", 2)
    source = wedding_folder(tmp_path / "source", photos=6, video_bytes=200_000)
    wedding = wedding_import(path=source, couple="Ana & Ben", date=dt.date(2026, 3, 1), country="US").wedding
    assets = list(wedding.assets.all())
    s3 = fleet["s3"]

    job = backup_start(wedding=wedding)
    run_workers(max_jobs=2)  # plan the round and upload the first batch...
    assert Replica.objects.filter(provider=s3, status="verified").exists()
    seaweedfs.stop()  # ...then S3 goes away mid-backup
    try:
        run_workers()
        job.refresh_from_db()
        assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
        s3.refresh_from_db()
        assert s3.status == Provider.Status.DOWN
        for asset in assets:
            healthy = verified_on(asset, healthy_only=True)
            assert len(healthy) >= 3, (asset.relative_path, healthy)
            assert "s3-us-east" not in healthy
        event = FailoverEvent.objects.get(provider=s3)
        assert event.trigger == "automatic" and event.affected_weddings == 1 and event.estimated_seconds is not None
        assert len(mail.outbox) == 1 and "s3-us-east" in mail.outbox[0].subject
        temporary = Replica.objects.filter(temporary=True, status="verified")
        assert temporary.exists() and "temporary copy" in temporary.first().reason
    finally:
        seaweedfs.start()

    health_check_all()  # the breaker's trial probe succeeds: the outage ends and repair is queued
    run_workers()
    s3.refresh_from_db()
    event = FailoverEvent.objects.get(provider=s3)
    assert s3.status == Provider.Status.ACTIVE and event.resolved_at is not None and event.actual_seconds >= 0
    for asset in assets:
        assert "s3-us-east" in verified_on(asset, healthy_only=True), asset.relative_path
        assert len(verified_on(asset, healthy_only=True)) >= 3
    assert not Replica.objects.filter(temporary=True, status="verified").exists()
    pruned = Replica.objects.filter(status="deleted")
    assert pruned.exists()
    container = azure_service(azurite).get_container_client(fleet["azure_west"].bucket)
    stored = {b.name for b in container.list_blobs()}
    for replica in pruned.filter(provider=fleet["azure_west"]).select_related("asset__wedding"):
        assert object_key(replica.asset) not in stored
    assert len(mail.outbox) == 1  # one notification per event, not per file
    with capsys.disabled():
        print("\nMulti-cloud backup with automatic failover working")
