"""Scrubbing on real watched folders and SeaweedFS, repairs on real RQ workers."""

from __future__ import annotations

import datetime as dt
import io
import math
import os
from pathlib import Path

import django_rq
import pytest
from django.utils import timezone

from backups.models import Asset, BackupPolicy, Replica
from protection.models import Alert, ScrubRun
from protection.scrub import scrub_run
from protection.scrub_plan import slice_size
from providers.backends import backend_for
from providers.localservers.seaweedfs import create_bucket, s3_client
from tests.factories import make_asset, make_provider, make_wedding
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, ensure_running, new_bucket_name
from tests.protection.backed_up import backed_up_wedding

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def make_wedding_backed_up(tmp_path, run_workers, three_folder_providers):
    def make(*, files: int = 3, name: str = "src"):
        return backed_up_wedding(tmp_path, run_workers, files=files, name=name)

    return make


def _cycle(days: int) -> None:
    policy = BackupPolicy.default()
    policy.scrub_days = days
    policy.save()


def _stored(replica: Replica) -> Path:
    return Path(replica.provider.bucket) / replica.object_key


def test_a_flipped_byte_is_found_repaired_by_a_worker_and_the_alert_resolves(make_wedding_backed_up, run_workers):
    wedding = make_wedding_backed_up(files=3)
    _cycle(1)  # a one-day cycle: this run reads every copy
    victim = Replica.objects.filter(asset__wedding=wedding, provider__name="folder-1").order_by("pk").first()
    good = _stored(victim).read_bytes()
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    _stored(victim).write_bytes(bytes(flipped))

    django_rq.get_queue("bulk").enqueue(scrub_run)  # as the dispatcher runs it; the repair it starts runs too
    run_workers()

    run = ScrubRun.objects.get()
    assert (run.replicas_checked, run.mismatches, run.repairs_started) == (9, 1, 1)
    assert run.bytes_read == sum(r.size for r in Replica.objects.filter(asset__wedding=wedding))
    assert run.finished_at is not None and "folder-1" in run.detail["mismatched"][0]
    assert _stored(victim).read_bytes() == good  # rewritten by the repair job
    victim.refresh_from_db()
    assert victim.status == Replica.Status.VERIFIED and victim.scrubbed_at is None
    assert Replica.objects.filter(asset__wedding=wedding, scrubbed_at__isnull=False).count() == 8
    alert = Alert.objects.get(kind=Alert.Kind.SCRUB_MISMATCH)
    assert alert.resolved_at is None and victim.object_key in alert.detail

    later = scrub_run(now=timezone.now() + dt.timedelta(hours=1))  # reads the repaired copy again, first
    assert later.detail["rechecked"] == 1 and later.mismatches == 0
    victim.refresh_from_db()
    assert victim.scrubbed_at is not None
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_a_missing_or_shortened_copy_is_damage_too(make_wedding_backed_up, run_workers):
    wedding = make_wedding_backed_up(files=2)
    _cycle(1)
    gone, short = Replica.objects.filter(asset__wedding=wedding, provider__name="folder-2").order_by("pk")
    _stored(gone).unlink()
    _stored(short).write_bytes(_stored(short).read_bytes()[:-1])
    run = scrub_run()
    assert run.mismatches == 2
    reasons = {r.pk: r.last_error for r in Replica.objects.filter(status=Replica.Status.FAILED)}
    assert reasons[gone.pk] == "scrub: missing on the provider"
    assert reasons[short.pk].startswith("scrub: size")
    run_workers()
    assert Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED).count() == 6


def test_the_alert_stays_open_while_a_damaged_copy_cannot_be_repaired(make_wedding_backed_up, run_workers):
    wedding = make_wedding_backed_up(files=1)
    _cycle(1)
    victim = Replica.objects.filter(asset__wedding=wedding, provider__name="folder-0").get()
    _stored(victim).write_bytes(b"x" * victim.size)
    # No good bytes anywhere: the source is gone and every other copy is damaged too (a repair reads either).
    Path(victim.asset.source_location).unlink()
    for other in Replica.objects.filter(asset=victim.asset).exclude(pk=victim.pk):
        _stored(other).write_bytes(b"y" * other.size)
    scrub_run()
    run_workers()
    later = scrub_run(now=timezone.now() + dt.timedelta(days=2))
    assert later.mismatches == 0
    assert Alert.objects.get(kind=Alert.Kind.SCRUB_MISMATCH).resolved_at is None


def test_the_slice_rule_in_numbers():
    # (runs that can still read them, copies due within those runs)
    assert slice_size(counts=[(1, 0), (2, 0), (31, 300)]) == 10  # steady state: N/D a run
    assert slice_size(counts=[(1, 25), (2, 30), (31, 300)]) == 25  # copies at their deadline are all read now
    assert slice_size(counts=[(1, 0), (2, 40), (31, 300)]) == 20  # a backlog due tomorrow: half now
    assert slice_size(counts=[(1, 0), (31, 0)]) == 0


def test_every_copy_is_read_within_the_cycle_at_an_even_pace(make_wedding_backed_up):
    first = make_wedding_backed_up(files=7, name="first")  # 21 copies
    days = 5
    _cycle(days)
    start = timezone.now()
    checked = []
    for day in range(4 * days):
        now = start + dt.timedelta(days=day)
        if day == 7:  # a second wedding arrives mid-way: its copies join the rotation
            second = make_wedding_backed_up(files=4, name="second")  # 12 more
            Replica.objects.filter(asset__wedding=second).update(verified_at=now)  # verified "today" in the test's time
        run = scrub_run(now=now)
        checked.append(run.replicas_checked)
        assert run.mismatches == 0
        if day >= days - 1:  # from the end of the first cycle on: no copy read (or verified) over a cycle ago
            assert not Replica.objects.filter(asset__wedding=first, scrubbed_at__isnull=True).exists()
            last_read = [s or v for s, v in Replica.objects.values_list("scrubbed_at", "verified_at")]
            assert min(last_read) >= now - dt.timedelta(days=days), day
    assert checked[:days] == [math.ceil(21 / days)] * days  # spread over the first cycle, not all on day one
    assert max(checked) <= math.ceil(33 / days) + 1  # never everything at once
    assert 33 <= sum(checked[-days:]) < 33 + days  # steady state: every copy once a cycle (plus rounding up)


def test_overdue_copies_are_all_read_at_once(make_wedding_backed_up):
    make_wedding_backed_up(files=4)
    _cycle(30)
    long_ago = timezone.now() - dt.timedelta(days=45)
    Replica.objects.update(scrubbed_at=long_ago)  # as if scrubbing had stopped for a fortnight
    Replica.objects.filter(pk=Replica.objects.order_by("pk").first().pk).update(scrubbed_at=timezone.now())
    run = scrub_run()
    assert run.replicas_checked == 11 and run.detail["due_now"] == 11
    assert run.detail["progress"] == {"verified": 12, "within_cycle": 12, "never": 0,
                                      "last_full_cycle": run.detail["progress"]["last_full_cycle"]}
    assert run.detail["progress"]["last_full_cycle"] is not None


def test_an_unreachable_provider_is_skipped_and_reported_not_condemned(make_wedding_backed_up, tmp_path):
    wedding = make_wedding_backed_up(files=2)
    _cycle(1)
    provider = Replica.objects.filter(provider__name="folder-2").first().provider
    provider.options = {}  # as configured in service: a missing folder is not made again
    provider.save()
    folder = Path(provider.bucket)
    folder.rename(folder.with_name("unplugged"))  # the NAS went away
    run = scrub_run()
    assert run.replicas_checked == 4 and run.mismatches == 0
    assert "folder-2" in run.detail["unreachable"] and run.detail["not_read"] == 2
    assert not Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.FAILED).exists()
    assert Replica.objects.filter(provider__name="folder-2", scrubbed_at__isnull=True).count() == 2


def test_a_provider_marked_down_is_not_read(make_wedding_backed_up):
    make_wedding_backed_up(files=2)
    _cycle(1)
    Replica.objects.first().provider.__class__.objects.filter(name="folder-0").update(status="down")
    run = scrub_run()
    assert run.replicas_checked == 4 and run.detail["skipped_providers"] == {"folder-0": "down"}


@pytest.fixture
def s3_and_folder(seaweedfs, tmp_path, settings):
    ensure_running(seaweedfs)
    bucket = create_bucket(seaweedfs, new_bucket_name())
    s3 = make_provider(name="s3", kind="aws_s3", region="us-east-1", bucket=bucket,
                       endpoint=seaweedfs.extra["endpoint"],
                       credentials={"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY})
    folder = make_provider(name="zz-folder", kind="watched_folder", region="us-east-1",
                           bucket=str(tmp_path / "nas"), options={"create": True})
    return s3, folder


def _copy(provider, asset: Asset, data: bytes, *, storage_class: str = "") -> Replica:
    key = f"weddings/{asset.wedding.slug}/photo/{asset.relative_path}"
    info = backend_for(provider).put(key, io.BytesIO(data), len(data), sha256=asset.sha256)
    return Replica.objects.create(asset=asset, provider=provider, object_key=key, size=info.size,
                                  checksums=info.checksums, sha256=asset.sha256, status=Replica.Status.VERIFIED,
                                  verified_at=timezone.now(), storage_class=storage_class)


def test_archived_copies_are_checked_by_metadata_only(s3_and_folder, seaweedfs):
    s3, folder = s3_and_folder
    wedding = make_wedding()
    data = os.urandom(4096)
    cold = _copy(s3, make_asset(wedding, data=data), data, storage_class="GLACIER")
    warm_data = os.urandom(4096)
    warm = _copy(s3, make_asset(wedding, data=warm_data), warm_data, storage_class="STANDARD")
    _cycle(1)
    raw = s3_client(seaweedfs)
    for replica in (cold, warm):  # same size, other bytes, put around WedBackup (no checksum of ours on it)
        raw.put_object(Bucket=s3.bucket, Key=replica.object_key, Body=os.urandom(4096))
    run = scrub_run()
    assert (run.replicas_checked, run.metadata_only, run.bytes_read, run.mismatches) == (2, 1, 4096, 1)
    cold.refresh_from_db()
    warm.refresh_from_db()
    # SeaweedFS serves every class at once, so a read of the "GLACIER" copy would have caught it: it was not read.
    assert cold.status == Replica.Status.VERIFIED and cold.scrubbed_at is not None
    assert warm.status == Replica.Status.FAILED and "sha256" in warm.last_error
    raw.delete_object(Bucket=s3.bucket, Key=cold.object_key)
    again = scrub_run(now=timezone.now() + dt.timedelta(days=2))
    cold.refresh_from_db()
    assert again.metadata_only == 1 and cold.status == Replica.Status.FAILED
    assert cold.last_error == "scrub: missing on the provider"


def test_cheapest_readable_copies_come_first(s3_and_folder):
    s3, folder = s3_and_folder
    wedding = make_wedding()
    for _ in range(3):
        data = os.urandom(1024)
        asset = make_asset(wedding, data=data)
        _copy(s3, asset, data, storage_class="STANDARD")
        _copy(folder, asset, data)
    _cycle(2)  # half of the six copies a run
    first = scrub_run()
    read = set(Replica.objects.filter(scrubbed_at__isnull=False).values_list("provider__name", flat=True))
    assert first.replicas_checked == 3 and read == {"zz-folder"}  # a local folder has no egress fee; S3 does


def test_two_runs_at_once_do_not_read_the_same_copies(make_wedding_backed_up):
    make_wedding_backed_up(files=1)
    _cycle(1)
    lock = django_rq.get_connection("default").lock("wedbackup:scrub-lock", timeout=60)
    assert lock.acquire(blocking=False)
    try:
        busy = scrub_run()
    finally:
        lock.release()
    assert busy.replicas_checked == 0 and busy.detail == {"skipped": "another scrub run holds the lock"}
    assert scrub_run().replicas_checked == 3


def test_a_run_killed_midway_is_closed_and_its_copies_read_by_the_next(make_wedding_backed_up):
    make_wedding_backed_up(files=1)
    _cycle(1)
    dead = ScrubRun.objects.create(started_at=timezone.now() - dt.timedelta(hours=2), replicas_checked=1)
    run = scrub_run()
    dead.refresh_from_db()
    assert dead.finished_at is not None and dead.detail == {"interrupted": True}
    assert run.replicas_checked == 3


def test_a_run_stops_at_its_time_budget_and_the_next_one_catches_up(make_wedding_backed_up):
    make_wedding_backed_up(files=2)
    _cycle(1)
    cut = scrub_run(budget_seconds=0)  # a spent budget still reads one copy: every run makes progress
    assert cut.replicas_checked == 1 and cut.detail["not_read"] == 5 and "time budget" in cut.detail["stopped"]
    assert scrub_run(now=timezone.now() + dt.timedelta(minutes=1)).replicas_checked == 5  # the other five


def test_encrypted_copies_are_decrypted_and_checked(three_folder_providers, tmp_path, run_workers):
    policy = BackupPolicy.default()
    policy.client_side_encryption, policy.scrub_days = True, 1
    policy.save()
    wedding = backed_up_wedding(tmp_path, run_workers, files=2)
    victim = Replica.objects.filter(asset__wedding=wedding, provider__name="folder-0").order_by("pk").first()
    assert victim.encrypted
    data = bytearray(_stored(victim).read_bytes())
    data[40] ^= 0x01
    _stored(victim).write_bytes(bytes(data))
    run = scrub_run()
    assert (run.replicas_checked, run.mismatches) == (6, 1)
    victim.refresh_from_db()
    assert victim.status == Replica.Status.FAILED and "authentication" in victim.last_error
