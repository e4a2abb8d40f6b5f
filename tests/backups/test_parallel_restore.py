"""A wedding's restore and deep verify read many files at once from real servers (SeaweedFS, Azurite), through
fault proxies that count and break the requests: every file bit-identical, a provider dying mid-restore leaves
no partial or temporary file and no file read or written twice."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from urllib.parse import unquote

import pytest

from backups.models import Replica
from backups.restore import wedding_restore
from backups.verify import wedding_verify
from providers.backends import backend_for
from providers.localservers.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from providers.localservers.seaweedfs import create_bucket
from providers.models import Provider
from tests.factories import make_asset, make_wedding
from tests.faults.proxy import FaultProxy
from tests.fixtures.azure import azure_service
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, ensure_running

FILES = 24


@pytest.fixture
def proxied(seaweedfs, azurite, settings):
    """aws_s3 (preferred: its name sorts first) and azure_blob, each behind a fault proxy of its own."""
    settings.WEDBACKUP_PROVIDER_CONCURRENCY = 3
    ensure_running(seaweedfs)
    if not azurite.running:
        azurite.start()
    name = f"wb-{uuid.uuid4().hex[:16]}"
    create_bucket(seaweedfs, name)
    azure_service(azurite).create_container(name)
    with FaultProxy(seaweedfs.port, seed=18) as s3_proxy, FaultProxy(azurite.port, seed=19) as azure_proxy:
        s3 = Provider.objects.create(name="a-s3", kind="aws_s3", region="us-east-1", bucket=name,
                                     endpoint=s3_proxy.url,
                                     credentials={"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY})
        azure = Provider.objects.create(name="b-azure", kind="azure_blob", region="eastus", bucket=name,
                                        endpoint=f"{azure_proxy.url}/{DEV_ACCOUNT_NAME}",
                                        credentials={"account_name": DEV_ACCOUNT_NAME, "account_key": DEV_ACCOUNT_KEY})
        yield {"s3": (s3, s3_proxy), "azure": (azure, azure_proxy)}


def stored_wedding(providers: list[Provider]):
    """FILES assets of 0 bytes to ~1.5 MB, each stored and verified on every provider."""
    wedding = make_wedding()
    data = {}
    for n in range(FILES):
        body = os.urandom(0 if n == 0 else (n * 65_537) % 1_600_000)
        asset = make_asset(wedding, relative_path=f"ceremony/{n % 3}/IMG_{n:04d}.jpg", data=body)
        key = f"weddings/{wedding.slug}/photo/{asset.relative_path}"
        for provider in providers:
            info = backend_for(provider).put(key, io.BytesIO(body), len(body), sha256=asset.sha256)
            Replica.objects.create(asset=asset, provider=provider, object_key=key, status=Replica.Status.VERIFIED,
                                   size=len(body), sha256=asset.sha256, checksums=info.checksums,
                                   version_id=info.version_id or "")
        data[asset.relative_path] = body
    return wedding, data


def gets(proxy: FaultProxy, *, complete: bool = False) -> list:
    """The proxy's GETs of objects (not of the bucket), optionally only those answered 200 to the last byte."""
    return [ex for ex in proxy.stats.exchanges if ex.method == "GET" and "/weddings/" in unquote(ex.path)
            and (not complete or (ex.status in (200, 206) and ex.finished and not ex.fault))]


def object_of(ex) -> str:
    return unquote(ex.path.split("?", 1)[0]).split("/weddings/", 1)[1]


def most_at_once(exchanges: list) -> int:
    edges = sorted([(ex.started, 1) for ex in exchanges] + [(ex.finished, -1) for ex in exchanges])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def tree(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


@pytest.mark.django_db
def test_a_wedding_is_restored_many_files_at_once_every_file_bit_identical(proxied, tmp_path):
    (s3, s3_proxy), (azure, _) = proxied["s3"], proxied["azure"]
    wedding, data = stored_wedding([s3, azure])
    s3_proxy.set(latency=0.05)  # every read takes a while: reads that overlap are reads in parallel
    heard = []

    report = wedding_restore(wedding=wedding, to=tmp_path / "out", progress=lambda a, ok: heard.append((a.pk, ok)))

    assert report.failed == {} and report.fallbacks == 0
    assert report.restored == sorted(data) and report.bytes == sum(len(b) for b in data.values())
    assert tree(tmp_path / "out") == {rel: hashlib.sha256(body).hexdigest() for rel, body in data.items()}
    assert sorted(heard) == sorted((a.pk, True) for a in wedding.assets.all())
    reads = gets(s3_proxy, complete=True)
    assert sorted(object_of(ex) for ex in reads) == sorted(f"{wedding.slug}/photo/{rel}" for rel in data)
    assert most_at_once(reads) >= 2


@pytest.mark.django_db
def test_a_provider_dying_mid_restore_the_rest_comes_from_the_next_replica_each_file_once(proxied, tmp_path):
    (s3, s3_proxy), (azure, azure_proxy) = proxied["s3"], proxied["azure"]
    wedding, data = stored_wedding([s3, azure])
    s3_proxy.set(latency=0.05)
    heard, died = [], threading.Event()

    def progress(asset, ok):
        heard.append((asset.relative_path, ok))
        if len(heard) == 4:  # S3 now cuts every answer half way through its body, then refuses connections
            s3_proxy.set(drop_rate=1.0)
            died.set()

    report = wedding_restore(wedding=wedding, to=tmp_path / "out", progress=progress)

    assert died.is_set() and s3_proxy.stats.drops >= 1  # at least one file was cut off mid-body
    assert report.failed == {} and report.fallbacks >= 1
    assert report.restored == sorted(data)
    assert sorted(heard) == sorted((rel, True) for rel in data)  # each file ended once
    assert tree(tmp_path / "out") == {rel: hashlib.sha256(body).hexdigest() for rel, body in data.items()}
    assert not list((tmp_path / "out").rglob(".restore-*"))
    from_s3 = [object_of(ex) for ex in gets(s3_proxy, complete=True)]
    # (Azure's SDK asks for an empty blob twice: a ranged GET answered 416, then the whole; so answers, not asks)
    from_azure = [object_of(ex) for ex in gets(azure_proxy, complete=True)]
    assert len(from_azure) == len(set(from_azure))  # no file read twice from the next replica
    assert not set(from_s3) & set(from_azure)  # none read whole from S3 was read again from Azure
    assert len(set(from_s3) | set(from_azure)) == FILES and from_azure


@pytest.mark.django_db
def test_a_deep_verify_reads_replicas_at_once_and_still_marks_the_damaged_one(proxied):
    (s3, s3_proxy), (azure, _) = proxied["s3"], proxied["azure"]
    wedding, data = stored_wedding([s3, azure])
    damaged = Replica.objects.filter(provider=azure, asset__wedding=wedding).exclude(size=0).order_by("pk").first()
    body = data[damaged.asset.relative_path]
    stored = backend_for(azure).put(damaged.object_key, io.BytesIO(body[::-1]), len(body),
                                    sha256=hashlib.sha256(body[::-1]).hexdigest())
    Replica.objects.filter(pk=damaged.pk).update(checksums=stored.checksums)  # only reading the bytes tells
    s3_proxy.set(latency=0.05)
    seen = []

    report = wedding_verify(wedding=wedding, deep=True, clean_orphans=False,
                            on_progress=lambda done, total: seen.append((done, total)))

    assert report.checked == 2 * FILES and report.ok == 2 * FILES - 1 and report.unreachable == []
    assert report.mismatched == [f"b-azure: {damaged.object_key}: sha256 of the stored bytes differs"]
    damaged.refresh_from_db()
    assert damaged.status == Replica.Status.FAILED
    assert seen[0] == (0, 2 * FILES) and seen[-1] == (2 * FILES, 2 * FILES) and len(seen) == 2 * FILES + 1
    assert most_at_once(gets(s3_proxy, complete=True)) >= 2
