"""Files named with characters that mean something in a URL, backed up by real workers to S3, GCS and Azure,
then deep-verified and restored from GCS alone: no copy is "unreachable", no restore falls back to another
provider (the GCS emulator's unencoded mediaLink used to send such reads to the wrong object)."""

import datetime as dt
import hashlib
import os

import pytest

from backups.ingest import wedding_import
from backups.models import BackupJob, Replica
from backups.restore import wedding_restore
from backups.tasks import backup_start
from backups.verify import wedding_verify
from providers.models import Provider

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.servers]

NAMES = (
    "ceremony?take#2/IMG 001 + 50%.jpg",
    "100% sure/plus+sign & eq=1;x.jpg",
    "looks%20encoded/esc%20aped%25%3F.jpg",
    "zoë-åsa/婚礼 💍 ñ.jpg",
    "Ceremony/IMG_0001.JPG",
    "ceremony/img_0001.jpg",
)


def test_hostile_names_deep_verify_and_restore_from_gcs(tmp_path, cloud_providers, run_workers):
    source = tmp_path / "source"
    data = {name: os.urandom(20_000 + i) for i, name in enumerate(NAMES)}
    for name, body in data.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(body)
    report = wedding_import(path=source, couple="Ana & Ben", date=dt.date(2026, 3, 1), country="US")
    assert report.problems == []
    wedding = report.wedding
    assert sorted(wedding.assets.values_list("relative_path", flat=True)) == sorted(NAMES)
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    gcs = cloud_providers["gcs"]
    on_gcs = Replica.objects.filter(provider=gcs, status="verified", asset__wedding=wedding)
    assert on_gcs.count() == len(NAMES)

    verified = wedding_verify(wedding=wedding, deep=True, clean_orphans=False)
    assert verified.unreachable == [] and verified.mismatched == [] and verified.orphans == []
    assert verified.ok == verified.checked == Replica.objects.filter(asset__wedding=wedding, status="verified").count()

    Provider.objects.exclude(pk=gcs.pk).update(enabled=False)  # GCS is the only place left to read from
    restored = wedding_restore(wedding=wedding, to=tmp_path / "restored")
    assert restored.failed == {} and restored.fallbacks == 0
    assert sorted(restored.restored) == sorted(NAMES)
    for name, body in data.items():
        back = (tmp_path / "restored" / name).read_bytes()
        assert hashlib.sha256(back).digest() == hashlib.sha256(body).digest(), name
