"""The tee against real targets: every backend's put takes a tee reader (multi-part sizes), a changed file
is committed nowhere, the engine reads a large file once for three clouds (plain and encrypted), and a
throttled target (the fault proxy) is detached instead of holding the others back."""

import builtins
import datetime as dt
import hashlib
import os
import threading
import uuid
from pathlib import Path

import pytest

from backups import tee, uploads
from backups.ingest import wedding_import
from backups.models import BackupJob, BackupPolicy, Replica
from backups.planning import plan_round
from backups.restore import wedding_restore
from backups.tasks import upload_batch
from backups.tee import Tee
from providers.backends import backend_for
from providers.backends.base import IntegrityError
from providers.backends.watched_folder import WatchedFolderBackend
from providers.localservers.seaweedfs import create_bucket
from providers.models import Provider
from tests.contract.conftest import CONTRACT_TARGETS
from tests.factories import make_provider
from tests.faults.proxy import FaultProxy
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, ensure_running, new_bucket_name

MIB = 1024 * 1024


@pytest.fixture
def big(tmp_path) -> tuple[Path, bytes]:
    data = os.urandom(6 * MIB + 123)  # over every fixture's part size (S3 and B2 5 MiB, Dropbox 4 MiB + 1)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    return path, data


def puts_through_one_tee(backend, t: Tee, keys: list[str]) -> list:
    out: list = [None] * len(keys)

    def one(i: int) -> None:
        try:
            with t.reader() as reader:
                out[i] = backend.put(keys[i], reader, t.size, sha256=t.sha256, content_type="video/mp4")
        except BaseException as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(keys))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    t.close()
    return out


@pytest.mark.parametrize("name", CONTRACT_TARGETS)
def test_every_backend_takes_a_tee_reader_and_refuses_a_changed_file(request, name, big):
    backend = request.getfixturevalue(f"{name}_target").backend
    path, data = big
    sha = hashlib.sha256(data).hexdigest()
    keys = [f"weddings/tee-{uuid.uuid4().hex[:8]}/video/{n}.mp4" for n in ("a", "b")]
    t = Tee(path, size=len(data), sha256=sha, chunk=1 * MIB, readers=2, patience=60)
    infos = puts_through_one_tee(backend, t, keys)
    assert [type(i).__name__ for i in infos] == ["ObjectInfo", "ObjectInfo"], infos
    assert t.stats["file_reads"] == 1 and t.stats["own_reads"] == 0
    for key in keys:
        with backend.open(key) as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == sha

    # The catalogue says other bytes: the tee's end read refuses them, nothing is committed.
    bad = Tee(path, size=len(data), sha256=hashlib.sha256(b"catalogued").hexdigest(), chunk=1 * MIB, readers=1)
    key = f"weddings/tee-{uuid.uuid4().hex[:8]}/video/changed.mp4"
    assert isinstance(puts_through_one_tee(backend, bad, [key])[0], IntegrityError)
    assert backend.head(key) is None


@pytest.fixture
def counted_opens(monkeypatch):
    """Opens of the wedding's source files by the upload code (Source and the tee's thread)."""
    opens: list[str] = []
    real_open = builtins.open

    def counting(path, *args, **kwargs):
        opens.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(uploads, "open", counting, raising=False)
    monkeypatch.setattr(tee, "open", counting, raising=False)
    monkeypatch.setattr(tee, "PATIENCE", 60.0)  # a loaded box never detaches a target here
    return opens


def one_file_job(tmp_path, size: int) -> tuple[BackupJob, list[int], bytes]:
    folder = tmp_path / f"wedding-{uuid.uuid4().hex[:6]}"
    (folder / "video").mkdir(parents=True)
    data = os.urandom(size)
    (folder / "video" / "ceremony.mp4").write_bytes(data)
    wedding = wedding_import(path=folder, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding
    job = BackupJob.objects.create(wedding=wedding, queue="default")
    plan_round(job)
    return job, list(wedding.assets.values_list("pk", flat=True)), data


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("encrypted", [False, True])
def test_a_multi_part_file_to_three_clouds_is_read_once(cloud_providers, tmp_path, counted_opens, encrypted):
    policy = BackupPolicy.default()
    policy.client_side_encryption = encrypted
    policy.save()
    job, assets, data = one_file_job(tmp_path, 12 * MIB + 5)  # 3 parts of 5 MiB
    assert upload_batch(job.pk, assets) == {"done": 1, "failed": 0}
    rows = Replica.objects.filter(asset__wedding=job.wedding, status="verified")
    assert sorted(rows.values_list("provider__kind", flat=True)) == ["aws_s3", "azure_blob", "gcs"]
    # One read feeds the three clouds; encrypted, a first pass computes the stored form's sha256 to declare.
    assert counted_opens.count("ceremony.mp4") == (2 if encrypted else 1)
    for r in rows:
        with backend_for(r.provider).open(r.object_key) as fh:
            stored = fh.read()
        assert stored == data if not encrypted else (stored.startswith(b"WBE1") and len(stored) > len(data))
    if encrypted:
        report = wedding_restore(wedding=job.wedding, to=tmp_path / "restored")
        assert report.failed == {}
        assert (tmp_path / "restored" / "video" / "ceremony.mp4").read_bytes() == data


@pytest.mark.django_db(transaction=True)
def test_a_throttled_target_is_detached_and_the_others_are_not_held_back(seaweedfs, tmp_path, settings,
                                                                         monkeypatch):
    """Two watched folders and an S3 bucket behind a proxy that trickles request bodies. With a one-chunk
    bound, the folders could only finish once S3 had taken the last chunk (15 MiB handed out at least);
    detached, S3 reads on its own and the folders finish while it is still on its first parts."""
    settings.WEDBACKUP_PART_SIZE = 5 * MIB
    monkeypatch.setattr(tee, "DEPTH", 1)
    monkeypatch.setattr(tee, "PATIENCE", 0.2)
    ensure_running(seaweedfs)
    bucket = create_bucket(seaweedfs, new_bucket_name())
    policy = BackupPolicy.default()
    policy.min_distinct_providers = 1
    policy.save()
    folders = [make_provider(name=f"folder-{i}", kind="watched_folder", region="us-east-1",
                             bucket=str(tmp_path / f"target-{i}"), options={"create": True}) for i in range(2)]
    tees: list[Tee] = []
    monkeypatch.setattr(uploads, "Tee", lambda *a, **k: tees.append(Tee(*a, **k)) or tees[-1])
    folder_streams, offsets_when_folders_done = set(), []
    real_put = WatchedFolderBackend.put

    def folder_put(self, key, stream, size, **kwargs):
        folder_streams.add(id(stream))
        info = real_put(self, key, stream, size, **kwargs)
        offsets_when_folders_done.append({id(r): r._offset for r in tees[0]._readers})
        return info

    monkeypatch.setattr(WatchedFolderBackend, "put", folder_put)
    with FaultProxy(seaweedfs.port, seed=18) as proxy:
        Provider.objects.create(name="s3-slow", kind="aws_s3", region="us-east-1", bucket=bucket,
                                endpoint=proxy.url,
                                credentials={"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY})
        proxy.set(upload_bps=4 * MIB)
        job, assets, data = one_file_job(tmp_path, 20 * MIB)  # 4 chunks (and S3 parts) of 5 MiB
        assert upload_batch(job.pk, assets) == {"done": 1, "failed": 0}
    assert Replica.objects.filter(asset__wedding=job.wedding, status="verified").count() == 3
    (t,) = tees
    assert t.stats["detached"] == 1 and t.stats["own_reads"] == 1 and t.stats["file_reads"] == 1
    assert t.stats["peak_chunks"] <= 1  # memory: one chunk held for the readers, whatever S3's pace
    (s3_reader,) = [r for r in t._readers if id(r) not in folder_streams]
    assert s3_reader._own is not None  # the detached one is S3's
    assert len(offsets_when_folders_done) == 2
    assert max(done[id(s3_reader)] for done in offsets_when_folders_done) <= 10 * MIB
    for provider in folders:
        assert next(Path(provider.bucket).rglob("ceremony.mp4")).read_bytes() == data
