"""Read once, fan out: one read of a file feeds every target; bookkeeping in bulk; failures stay apart.

``upload_batch`` is called directly (in this process, real watched-folder backends, real Redis and
PostgreSQL) so the test can count opens, puts, bulk writes and breaker records.
"""

import builtins
import datetime as dt
import hashlib
import io
import os
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backups import batches, planning, tee, uploads
from backups.ingest import wedding_import
from backups.models import BackupJob, BackupPolicy, Replica
from backups.planning import plan_round
from backups.restore import wedding_restore
from backups.tasks import upload_batch
from providers.backends.base import TransientError
from providers.backends.watched_folder import WatchedFolderBackend
from providers.breaker import breaker_store
from tests.factories import make_provider

pytestmark = pytest.mark.django_db(transaction=True)
KIB = 1024


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "wedding"
    (src / "photos").mkdir(parents=True)
    for i in range(5):
        (src / "photos" / f"IMG_{i}.jpg").write_bytes(os.urandom(20 * KIB + i))
    (src / "video").mkdir()
    (src / "video" / "clip.mp4").write_bytes(os.urandom(300 * KIB))  # over the part size set below
    return src


@pytest.fixture
def targets(tmp_path, settings):
    settings.WEDBACKUP_PART_SIZE = 64 * KIB  # photos are read into memory once, the clip streams per target
    policy = BackupPolicy.default()
    policy.min_distinct_providers = 1
    policy.save()
    return [make_provider(name=f"folder-{i}", kind="watched_folder", region="us-east-1",
                          bucket=str(tmp_path / f"target-{i}"), options={"create": True}) for i in range(3)]


def planned_job(source):
    wedding = wedding_import(path=source, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding
    job = BackupJob.objects.create(wedding=wedding, queue="default")
    plan_round(job)
    return job, list(wedding.assets.order_by("pk").values_list("pk", flat=True))


@pytest.fixture
def opens(monkeypatch, source):
    """Opens of the wedding's source files by the upload code, per relative path."""
    counts: dict[str, int] = {}
    real_open = builtins.open

    def counting_open(path, *args, **kwargs):
        p = Path(path)
        if source in p.parents:
            rel = p.relative_to(source).as_posix()
            counts[rel] = counts.get(rel, 0) + 1
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(uploads, "open", counting_open, raising=False)
    monkeypatch.setattr(tee, "open", counting_open, raising=False)  # the tee's reading thread (large files)
    monkeypatch.setattr(tee, "PATIENCE", 30.0)  # a loaded box never detaches a target here
    return counts


def test_each_photo_and_the_big_clip_are_read_once_for_three_targets(source, targets, opens):
    job, assets = planned_job(source)
    result = upload_batch(job.pk, assets)
    assert result == {"done": 6, "failed": 0}
    assert Replica.objects.filter(status="verified").count() == 18
    photos = {k: v for k, v in opens.items() if k.startswith("photos/")}
    assert photos == {f"photos/IMG_{i}.jpg": 1 for i in range(5)}  # one read for three targets
    assert opens["video/clip.mp4"] == 1  # over the part size: one read through the tee, a few parts at a time
    for provider in targets:
        for path in source.rglob("*.*"):
            stored = next(Path(provider.bucket).rglob(path.name))
            assert stored.read_bytes() == path.read_bytes()


def test_bookkeeping_is_written_in_bulk_and_the_counters_add_up(source, targets, monkeypatch):
    monkeypatch.setattr(batches, "FLUSH_EVERY", 2)
    bulk_writes, records = [], []
    real_write = uploads.replicas_write
    real_record = uploads.breaker_record
    monkeypatch.setattr(uploads, "replicas_write", lambda rows, fields: (bulk_writes.append(len(rows)),
                                                                         real_write(rows, fields))[1])
    monkeypatch.setattr(uploads, "breaker_record", lambda *a, **k: (records.append((a, k)), real_record(*a, **k))[1])
    job, assets = planned_job(source)
    upload_batch(job.pk, assets)
    job.refresh_from_db()
    total = sum(p.stat().st_size for p in source.rglob("*.*"))
    assert (job.files_done, job.files_failed, job.bytes_done, job.bytes_failed) == (6, 0, 3 * total, 0)
    assert sum(bulk_writes) == 18 and len(bulk_writes) <= 4  # every 2 assets and at the end, not per upload
    assert sorted(a[0] for a, _ in records) == sorted(p.pk for p in targets)  # one success record per provider
    assert all(k == {"count": 6} and a[1] is True for a, k in records)
    assert {breaker_store().window(p.pk).calls for p in targets} == {6}  # each success still counted
    for r in Replica.objects.all():
        assert r.status == "verified" and r.sha256 == r.asset.sha256 and r.verified_at and r.attempts == 1


def test_one_failing_target_does_not_lose_the_others(source, targets, monkeypatch, opens):
    real_put = WatchedFolderBackend.put

    def put(self, key, stream, size, **kwargs):
        if self.config.name == "folder-1":
            stream.read(1000)  # fails after consuming part of the shared buffer
            raise TransientError("folder-1 is throttling")
        return real_put(self, key, stream, size, **kwargs)

    monkeypatch.setattr(WatchedFolderBackend, "put", put)
    job, assets = planned_job(source)
    assert upload_batch(job.pk, assets) == {"done": 0, "failed": 6}
    job.refresh_from_db()
    total = sum(p.stat().st_size for p in source.rglob("*.*"))
    assert job.bytes_done == 2 * total and 0 < job.bytes_failed <= total
    by_provider = {p.name: set(Replica.objects.filter(provider=p).values_list("status", flat=True)) for p in targets}
    assert by_provider == {"folder-0": {"verified"}, "folder-1": {"failed"}, "folder-2": {"verified"}}
    failed = Replica.objects.filter(provider=targets[1])
    # Three failures in a row open its breaker: later assets skip it at once ("redirected"), never permanently.
    assert all(("throttling" in r.last_error or "provider down" in r.last_error) and not r.permanent_failure
               for r in failed)
    assert {k: v for k, v in opens.items() if k.startswith("photos/")} == {f"photos/IMG_{i}.jpg": 1 for i in range(5)}
    for provider in (targets[0], targets[2]):
        for path in source.rglob("*.jpg"):
            assert next(Path(provider.bucket).rglob(path.name)).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("name", ["photos/IMG_2.jpg", "video/clip.mp4"])
def test_a_source_changed_since_import_is_caught_for_every_target(source, targets, monkeypatch, name):
    job, assets = planned_job(source)
    path = source / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte different
    path.write_bytes(bytes(data))
    puts = []
    real_put = WatchedFolderBackend.put
    monkeypatch.setattr(WatchedFolderBackend, "put", lambda self, key, *a, **k: (puts.append(key),
                                                                                  real_put(self, key, *a, **k))[1])
    result = upload_batch(job.pk, assets)
    assert result == {"done": 5, "failed": 1}
    changed = Replica.objects.filter(asset__relative_path=name)
    assert {r.status for r in changed} == {"failed"}
    assert all("changed on disk" in r.last_error and r.permanent_failure for r in changed)
    if name.startswith("photos/"):
        assert not any(k.endswith(name) for k in puts)  # caught while reading: no target was sent a byte
    for provider in targets:
        assert not list(Path(provider.bucket).rglob(Path(name).name))  # and nothing was stored anywhere
    assert breaker_store().get(targets[0].pk).consecutive_failures == 0  # not the provider's fault


def test_a_read_error_fails_every_target_of_that_asset_only(source, targets, monkeypatch):
    job, assets = planned_job(source)
    (source / "photos" / "IMG_0.jpg").unlink()
    assert upload_batch(job.pk, assets) == {"done": 5, "failed": 1}
    gone = Replica.objects.filter(asset__relative_path="photos/IMG_0.jpg")
    assert all(r.status == "failed" and "missing" in r.last_error for r in gone)


def test_encrypted_copies_from_one_read_and_from_streams_restore_intact(source, targets, tmp_path, opens):
    policy = BackupPolicy.default()
    policy.client_side_encryption = True
    policy.save()
    job, assets = planned_job(source)
    assert upload_batch(job.pk, assets) == {"done": 6, "failed": 0}
    assert opens["photos/IMG_3.jpg"] == 1  # encrypted once in memory for the three targets
    # The stored form is deterministic, so the three targets hold identical ciphertext.
    stored = [next(Path(p.bucket).rglob("IMG_3.jpg")).read_bytes() for p in targets]
    assert stored[0].startswith(b"WBE1") and stored[0] == stored[1] == stored[2]
    assert Replica.objects.filter(status="verified", encrypted=True).count() == 18
    report = wedding_restore(wedding=job.wedding, to=tmp_path / "restored")
    assert report.failed == {}
    for path in source.rglob("*.*"):
        restored = tmp_path / "restored" / path.relative_to(source)
        assert hashlib.sha256(restored.read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest()


def test_a_hashed_buffer_hands_out_the_same_bytes_without_copying():
    from providers.backends.base import HashedBuffer, HashingReader

    data = os.urandom(5000)
    buf = HashedBuffer(data)
    assert buf.read() is data and buf.read() == b""
    reader = HashingReader(HashedBuffer(data), len(data), hashlib.sha256(data).hexdigest())
    assert reader.digest_known and reader.read_exactly(100) == data[:100]
    assert reader.read_exactly(len(data)) == data[100:]
    reader.check()
    plain = HashingReader(io.BytesIO(data), len(data), None)
    assert not plain.digest_known


def test_planning_inserts_the_new_replicas_in_bulk_and_a_second_plan_adds_none(source, targets):
    wedding = wedding_import(path=source, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding
    job = BackupJob.objects.create(wedding=wedding, queue="default")
    with CaptureQueriesContext(connection) as queries:
        plan = plan_round(job)
    inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "backups_replica"')]
    assert plan.uploads == 18 and len(inserts) == 1  # not one INSERT per copy
    rows = Replica.objects.filter(asset__wedding=wedding)
    assert rows.count() == 18 and all(r.status == "planned" and r.created and r.reason for r in rows)
    assert plan_round(job).uploads == 18  # still planned: the same rows again, none added
    assert rows.count() == 18


def test_a_copy_another_planner_made_meanwhile_is_kept_not_an_error(source, targets, monkeypatch):
    """A batch re-planning for an outage and the failover job's round can plan the same wedding at once."""
    wedding = wedding_import(path=source, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding
    job = BackupJob.objects.create(wedding=wedding, queue="default")
    real_route, raced = planning.route, []

    def route(*args, **kwargs):
        plan = real_route(*args, **kwargs)
        if not raced and plan.placements:  # the other planner inserts this asset's first copy first
            asset = wedding.assets.order_by("pk").first()
            raced.append(Replica.objects.create(asset=asset, provider_id=plan.placements[0].provider_id,
                                                object_key="other", status="planned"))
        return plan

    monkeypatch.setattr(planning, "route", route)
    plan_round(job)
    assert Replica.objects.filter(asset__wedding=wedding).count() == 18
    assert Replica.objects.get(pk=raced[0].pk).object_key == "other"  # the other planner's row stands


def test_a_small_files_targets_are_put_in_its_own_thread_a_large_files_at_once(source, targets, monkeypatch):
    job, asset_ids = planned_job(source)
    threads: dict[str, set[str]] = {}
    real_put = WatchedFolderBackend.put

    def put(self, key, stream, size, **kwargs):
        threads.setdefault(key.rsplit("/", 1)[-1], set()).add(threading.current_thread().name)
        return real_put(self, key, stream, size, **kwargs)

    monkeypatch.setattr(WatchedFolderBackend, "put", put)
    upload_batch(job.pk, asset_ids)

    assert Replica.objects.filter(status=Replica.Status.VERIFIED).count() == 3 * len(asset_ids)
    photos = {name: names for name, names in threads.items() if name.endswith(".jpg")}
    assert len(photos) == 5
    # A buffered photo's three puts: one after another in the asset thread that read it (no hand-off).
    assert all(len(names) == 1 and next(iter(names)).startswith("asset-") for names in photos.values()), photos
    # The clip's three run at once on the batch's target threads, fed by one read (the tee).
    assert len(threads["clip.mp4"]) == 3 and all(n.startswith("target") for n in threads["clip.mp4"])
