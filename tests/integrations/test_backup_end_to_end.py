"""A wedding imported, backed up by real RQ workers to the local S3, GCS and Azure servers, checked with each
provider's own SDK (not through WedBackup), restored, and backed up again with zero uploads."""

import base64
import datetime as dt
import hashlib
import json

import pytest

from backups.ingest import wedding_import
from backups.models import BackupJob, Replica
from backups.restore import wedding_restore
from backups.tasks import backup_start
from providers.localservers.gcs_emulator import gcs_client
from providers.localservers.seaweedfs import s3_client
from tests.fixtures.azure import azure_service
from tests.weddings import wedding_folder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.servers]


def test_a_wedding_round_trips_through_three_real_clouds(tmp_path, cloud_providers, seaweedfs, gcs_emulator, azurite,
                                                          run_workers):
    source = wedding_folder(tmp_path / "source")
    report = wedding_import(path=source, couple="Zoë & Åsa", date=dt.date(2026, 1, 10), country="US",
                            requires_ml_analysis=True)
    assert report.problems == []
    wedding = report.wedding
    files = {a.relative_path: a for a in wedding.assets.all()}
    assert files["raw/IMG_0001.CR3"].kind == "raw_photo" and files["video/first dance.mp4"].kind == "video"
    assert files["portraits/Zoë & Åsa — first look.jpg"].width == 4300

    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    assert job.bytes_done == job.bytes_planned > 0

    bucket = cloud_providers["s3"].bucket
    s3, gcs, azure = s3_client(seaweedfs), gcs_client(gcs_emulator).bucket(bucket), azure_service(azurite)
    container = azure.get_container_client(bucket)
    for path, asset in files.items():
        data = (source / path).read_bytes()
        key = f"weddings/{wedding.slug}/{asset.kind}/{path}"
        replicas = {r.provider.kind: r for r in Replica.objects.filter(asset=asset).select_related("provider")}
        assert set(replicas) == {"aws_s3", "gcs", "azure_blob"}
        assert all(r.status == "verified" and r.object_key == key for r in replicas.values())
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
        assert gcs.blob(key).download_as_bytes() == data
        props = container.get_blob_client(key).get_blob_properties()
        assert props.size == len(data)
        if props.content_settings.content_md5:
            assert bytes(props.content_settings.content_md5) == hashlib.md5(data).digest()  # noqa: S324
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        if "-" not in head.get("ChecksumSHA256", "-"):
            assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()

    # Routing's reasons are stored: the 4300x3000 portrait is high resolution, the wedding needs ML.
    portrait = Replica.objects.get(asset=files["portraits/Zoë & Åsa — first look.jpg"], provider__kind="aws_s3")
    assert portrait.storage_class == "INTELLIGENT_TIERING" and "Intelligent-Tiering" in portrait.reason
    assert Replica.objects.filter(provider__kind="gcs", storage_class="STANDARD").count() == len(files)

    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"weddings/{wedding.slug}/MANIFEST.json")["Body"].read())
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {p: a.sha256 for p, a in files.items()}
    assert json.loads(gcs.blob(f"weddings/{wedding.slug}/MANIFEST.json").download_as_bytes())["files"]

    restored = wedding_restore(wedding=wedding, to=tmp_path / "restored")
    assert restored.failed == {}
    for path in files:
        assert (tmp_path / "restored" / path).read_bytes() == (source / path).read_bytes()

    attempts = sorted(Replica.objects.values_list("pk", "attempts"))
    again = backup_start(wedding=wedding)
    run_workers()
    again.refresh_from_db()
    assert again.status == BackupJob.Status.SUCCEEDED and again.bytes_planned == 0
    assert sorted(Replica.objects.values_list("pk", "attempts")) == attempts
