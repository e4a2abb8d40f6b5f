"""Restore drills on real watched folders and SeaweedFS, through real RQ workers."""

from __future__ import annotations

import io
import os
import random
import tempfile
from pathlib import Path

import django_rq
import pytest
from django.utils import timezone

from backups.models import Asset, BackupPolicy, Replica
from protection.drills import FOLDER_PREFIX, drill_run, drill_sample, drills_run
from protection.models import Alert, Drill
from protection.scrub import scrub_run
from providers.backends import backend_for
from providers.localservers.seaweedfs import create_bucket, s3_client
from providers.models import Provider
from tests.factories import make_asset, make_provider, make_wedding
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, ensure_running, new_bucket_name
from tests.protection.backed_up import backed_up_wedding

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wedding(tmp_path, run_workers, three_folder_providers):
    return backed_up_wedding(tmp_path, run_workers, files=3)


def _stored(replica: Replica) -> Path:
    return Path(replica.provider.bucket) / replica.object_key


def _leftover_folders(provider: Provider) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX.format(pk=provider.pk)}*"))


def test_a_drill_restores_a_sample_checks_it_and_records_the_speed(wedding):
    provider = Provider.objects.get(name="folder-0")
    drill = drill_run(provider=provider)
    assert drill.ok is True and drill.finished_at is not None and drill.failures == []
    assert drill.files == 3  # five asked for, three on the provider
    assert drill.bytes == sum(a.size for a in Asset.objects.filter(wedding=wedding))
    assert drill.seconds > 0 and drill.bytes_per_second > 0
    assert _leftover_folders(provider) == []
    assert not Alert.objects.filter(kind=Alert.Kind.DRILL_FAILED).exists()


def test_a_drill_catches_a_provider_returning_wrong_bytes_and_a_good_one_resolves_the_alert(wedding, run_workers):
    bad = Provider.objects.get(name="folder-1")
    victim = Replica.objects.filter(provider=bad).order_by("pk").first()
    good = _stored(victim).read_bytes()
    _stored(victim).write_bytes(os.urandom(len(good)))  # same size, other bytes: only reading them tells

    django_rq.get_queue("bulk").enqueue(drills_run)  # as the dispatcher runs it
    run_workers()

    drills = {d.provider.name: d for d in Drill.objects.select_related("provider")}
    assert {name: d.ok for name, d in drills.items()} == {"folder-0": True, "folder-1": False, "folder-2": True}
    failed = drills["folder-1"]
    assert failed.files == 2 and len(failed.failures) == 1
    assert failed.failures[0]["path"].endswith(victim.asset.relative_path)
    assert "sha256" in failed.failures[0]["reason"]
    alert = Alert.objects.get(kind=Alert.Kind.DRILL_FAILED, resolved_at__isnull=True)
    assert alert.key == f"drill_failed:provider:{bad.pk}" and "folder-1" in alert.subject
    assert _leftover_folders(bad) == []
    victim.refresh_from_db()
    assert victim.status == Replica.Status.VERIFIED  # a drill only reads; the scrub marks and repairs

    _stored(victim).write_bytes(good)
    again = drill_run(provider=bad)
    assert again.ok is True and again.files == 3
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_the_sample_is_random_bounded_and_skips_copies_that_cannot_be_read_at_once(wedding):
    provider = Provider.objects.get(name="folder-2")
    ids = set(Replica.objects.filter(provider=provider).values_list("pk", flat=True))
    seen = set()
    for seed in range(20):
        sample = drill_sample(provider=provider, count=2, rng=random.Random(seed))
        assert len(sample) == 2 and len({r.pk for r in sample}) == 2
        seen |= {r.pk for r in sample}
    assert seen == ids  # every copy can be drawn
    Replica.objects.filter(provider=provider).exclude(pk=min(ids)).update(status=Replica.Status.FAILED)
    assert [r.pk for r in drill_sample(provider=provider, count=5)] == [min(ids)]


@pytest.fixture
def s3_provider(seaweedfs, db):
    ensure_running(seaweedfs)
    bucket = create_bucket(seaweedfs, new_bucket_name())
    return make_provider(name="s3", kind="aws_s3", region="us-east-1", bucket=bucket,
                         endpoint=seaweedfs.extra["endpoint"],
                         credentials={"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY})


def _copy(provider, asset: Asset, data: bytes, *, storage_class: str = "STANDARD") -> Replica:
    key = f"weddings/{asset.wedding.slug}/photo/{asset.relative_path}"
    info = backend_for(provider).put(key, io.BytesIO(data), len(data), sha256=asset.sha256)
    return Replica.objects.create(asset=asset, provider=provider, object_key=key, size=info.size,
                                  checksums=info.checksums, sha256=asset.sha256, status=Replica.Status.VERIFIED,
                                  verified_at=timezone.now(), storage_class=storage_class)


def test_an_object_overwritten_on_s3_fails_the_drill_and_archived_copies_are_never_drawn(s3_provider, seaweedfs):
    wedding = make_wedding()
    warm = []
    for _ in range(2):
        data = os.urandom(50_000)
        warm.append(_copy(s3_provider, make_asset(wedding, data=data), data))
    data = os.urandom(50_000)
    cold = _copy(s3_provider, make_asset(wedding, data=data), data, storage_class="DEEP_ARCHIVE")
    assert drill_run(provider=s3_provider).files == 2  # the Deep Archive copy would need a paid rehydration
    s3_client(seaweedfs).put_object(Bucket=s3_provider.bucket, Key=warm[0].object_key, Body=os.urandom(50_000))
    drill = drill_run(provider=s3_provider)
    assert drill.ok is False and drill.files == 1
    assert [f["path"] for f in drill.failures] == [f"{wedding.slug}/{warm[0].asset.relative_path}"]
    assert cold.asset.relative_path not in str(drill.failures)
    assert Alert.objects.filter(key=f"drill_failed:provider:{s3_provider.pk}", resolved_at__isnull=True).exists()


def test_a_drill_a_crash_left_behind_is_closed_and_its_folder_removed(wedding):
    provider = Provider.objects.get(name="folder-0")
    dead = Drill.objects.create(provider=provider)
    left = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX.format(pk=provider.pk)))
    (left / "half.jpg").write_bytes(b"half")
    drill = drill_run(provider=provider)
    dead.refresh_from_db()
    assert dead.finished_at is not None and dead.ok is None and dead.detail.startswith("interrupted")
    assert not left.exists() and drill.ok is True


def test_one_drill_per_provider_at_a_time(wedding):
    provider = Provider.objects.get(name="folder-0")
    lock = django_rq.get_connection("default").lock(f"wedbackup:drill-lock:{provider.pk}", timeout=60)
    assert lock.acquire(blocking=False)
    try:
        busy = drill_run(provider=provider)
    finally:
        lock.release()
    assert busy.ok is None and busy.files == 0 and "another drill" in busy.detail


def test_a_provider_with_nothing_to_restore_records_that_and_down_providers_are_left_out(wedding, tmp_path):
    make_provider(name="empty", kind="watched_folder", bucket=str(tmp_path / "empty"), options={"create": True})
    Provider.objects.filter(name="folder-2").update(status=Provider.Status.DOWN)
    drills = {d.provider.name: d for d in drills_run(sample=1)}
    assert set(drills) == {"empty", "folder-0", "folder-1"}
    assert drills["empty"].ok is None and drills["empty"].detail.startswith("nothing to restore")
    assert drills["folder-0"].files == 1 and drills["folder-0"].ok is True


def test_the_protection_page_shows_real_runs(wedding, staff_client):
    from_ok = drill_run(provider=Provider.objects.get(name="folder-0"))
    Provider.objects.filter(name="folder-2").update(status=Provider.Status.DOWN)
    BackupPolicy.objects.filter(is_default=True).update(scrub_days=1)  # this run reads every copy it can
    scrub = scrub_run()
    page = staff_client.get("/protection/").content.decode()
    assert from_ok.ok and 'data-drill-provider="folder-0"' in page and "passed" in page
    assert f'data-scrub-run="{scrub.pk}"' in page and "folder-2 skipped (down)" in page
    assert 'data-stat="scrub-share">66.7%' in page  # folder-2's copies were not read
