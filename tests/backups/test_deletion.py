"""The one guarded path for deleting a stored object (backups.deletion), on real watched folders."""

import ast
import datetime as dt
import hashlib
import io
import os
from pathlib import Path

import pytest
from django.utils import timezone

from backups.audit import audit_record
from backups.deletion import DeleteRefused, replica_delete, stray_delete
from backups.layout import object_key, wedding_prefix
from backups.models import AuditEvent, BackupJob, Replica
from backups.repair import repair_prune_temporaries
from backups.verify import wedding_verify
from providers.backends import backend_for
from providers.backends.base import ObjectInfo
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db
DATA = b"\xff\xd8\xff" + b"first dance" * 100
ROOT = Path(__file__).resolve().parents[2]


def folder(tmp_path, name, **kwargs):
    values = {"name": name, "kind": "watched_folder", "region": "us-east-1", "bucket": str(tmp_path / name),
              "options": {"create": True}}
    values.update(kwargs)
    return make_provider(**values)


def stored(asset, provider, **kwargs) -> Replica:
    info = backend_for(provider).put(object_key(asset), io.BytesIO(DATA), len(DATA), sha256=asset.sha256)
    return Replica.objects.create(asset=asset, provider=provider, object_key=info.key, status=Replica.Status.VERIFIED,
                                  size=len(DATA), sha256=asset.sha256, checksums=info.checksums, **kwargs)


def on_disk(replica: Replica) -> bool:
    return (Path(replica.provider.bucket) / replica.object_key).exists()


@pytest.fixture
def three(tmp_path, policy):
    wedding = make_wedding()
    asset = make_asset(wedding, data=DATA)
    providers = [folder(tmp_path, f"nas-{n}") for n in "abc"]
    return wedding, asset, [stored(asset, p) for p in providers]


def test_a_copy_goes_when_the_survivors_are_confirmed_on_their_providers(three):
    _, _, (a, b, c) = three
    replica_delete(replica=c, reason="test", by="alice")
    c.refresh_from_db()
    assert c.status == Replica.Status.DELETED and not on_disk(c)
    event = AuditEvent.objects.get(action="replica.delete")
    assert event.actor_label == "alice" and sorted(event.details["survivors"]) == ["nas-a", "nas-b"]


def test_a_survivor_that_vanished_outside_the_app_does_not_count(three):
    _, _, (a, b, c) = three
    (Path(b.provider.bucket) / b.object_key).unlink()  # the database still says verified
    with pytest.raises(DeleteRefused, match="missing on the provider"):
        replica_delete(replica=c, reason="test")
    c.refresh_from_db()
    assert c.status == Replica.Status.VERIFIED and on_disk(c)
    assert AuditEvent.objects.filter(action="replica.delete_refused").count() == 1


def test_a_survivor_whose_bytes_changed_does_not_count(three):
    _, _, (a, b, c) = three
    (Path(b.provider.bucket) / b.object_key).write_bytes(b"ransomware was here")
    with pytest.raises(DeleteRefused):
        replica_delete(replica=c, reason="test")
    assert on_disk(c)


def test_prune_keeps_the_temporary_copy_when_a_preferred_copy_is_gone_from_its_provider(three):
    wedding, _, (a, b, temp) = three
    Replica.objects.filter(pk=temp.pk).update(temporary=True)
    (Path(a.provider.bucket) / a.object_key).unlink()  # e.g. a provider that came back empty
    assert repair_prune_temporaries(wedding=wedding) == 0
    temp.refresh_from_db()
    assert temp.status == Replica.Status.VERIFIED and on_disk(temp)


def test_two_providers_on_one_folder_are_one_copy(tmp_path, policy):
    wedding = make_wedding()
    asset = make_asset(wedding, data=DATA)
    a = folder(tmp_path, "nas-a")
    os.symlink(tmp_path / "nas-a", tmp_path / "alias")
    twin = folder(tmp_path, "alias")  # another row, another path, the same folder
    keep_a = stored(asset, a)
    keep_twin = Replica.objects.create(asset=asset, provider=twin, object_key=keep_a.object_key, size=len(DATA),
                                       status=Replica.Status.VERIFIED, sha256=asset.sha256,
                                       checksums=keep_a.checksums)
    other = stored(asset, folder(tmp_path, "nas-b"))
    assert backend_for(a).location() == backend_for(twin).location()
    with pytest.raises(DeleteRefused, match="same physical location"):
        replica_delete(replica=keep_a, reason="move to the twin")  # the twin is that very object
    assert on_disk(keep_a) and on_disk(keep_twin) and on_disk(other)


def test_a_stray_object_goes_only_when_old_unreferenced_and_no_writing_job_runs(tmp_path):
    wedding = make_wedding()
    provider = folder(tmp_path, "nas-a")
    backend = backend_for(provider)
    key = f"{wedding_prefix(wedding)}photo/left-behind.jpg"
    backend.put(key, io.BytesIO(b"x"), 1, sha256=hashlib.sha256(b"x").hexdigest())
    old = ObjectInfo(key=key, size=1, modified=timezone.now() - dt.timedelta(days=2))
    young = ObjectInfo(key=key, size=1, modified=timezone.now())
    assert not stray_delete(provider=provider, wedding=wedding, info=young, reason="test")
    job = BackupJob.objects.create(wedding=wedding, kind=BackupJob.Kind.OPTIMISE, status=BackupJob.Status.RUNNING)
    assert not stray_delete(provider=provider, wedding=wedding, info=old, reason="test")  # a cost move may own it
    BackupJob.objects.filter(pk=job.pk).update(status=BackupJob.Status.SUCCEEDED)
    asset = make_asset(wedding, data=b"x")
    row = Replica.objects.create(asset=asset, provider=provider, object_key=key, status=Replica.Status.PLANNED)
    assert not stray_delete(provider=provider, wedding=wedding, info=old, reason="test")  # referenced now
    Replica.objects.filter(pk=row.pk).update(status=Replica.Status.DELETED)
    assert stray_delete(provider=provider, wedding=wedding, info=old, reason="test")
    assert backend.head(key) is None
    assert AuditEvent.objects.get(action="object.delete").details["key"] == key


def test_verify_leaves_a_young_orphan_alone_and_removes_it_once_old(tmp_path, settings):
    wedding = make_wedding()
    provider = folder(tmp_path, "nas-a")
    key = f"{wedding_prefix(wedding)}photo/left-behind.jpg"
    backend_for(provider).put(key, io.BytesIO(b"x"), 1, sha256=hashlib.sha256(b"x").hexdigest())
    settings.WEDBACKUP_ORPHAN_MIN_AGE = 3600
    report = wedding_verify(wedding=wedding)
    assert report.orphans == [f"nas-a: {key}"] and report.orphans_deleted == 0
    settings.WEDBACKUP_ORPHAN_MIN_AGE = 0
    assert wedding_verify(wedding=wedding).orphans_deleted == 1


def test_nothing_but_the_guarded_path_deletes_a_stored_object():
    """Every ``<backend>.delete(...)`` call in the engine lives in backups/deletion.py."""
    offenders = []
    for pkg in ("backups", "costs", "console", "providers", "wedbackup"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if rel.parts[:2] == ("providers", "backends") or rel == Path("backups/deletion.py"):
                continue  # the backends implement delete; their own probe removes its canary
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "delete"
                        and "backend" in ast.unparse(node.func.value).lower()):
                    offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_on_a_case_insensitive_provider_a_key_spelt_in_another_case_is_still_referenced(tmp_path):
    wedding = make_wedding()
    dropbox = make_provider(name="dbx", kind="dropbox", region="", bucket="WedBackup")
    asset = make_asset(wedding, relative_path="ceremony/b.jpg", data=b"x")
    Replica.objects.create(asset=asset, provider=dropbox, object_key=f"{wedding_prefix(wedding)}photo/ceremony/b.jpg",
                           status=Replica.Status.VERIFIED)
    listed = ObjectInfo(key=f"{wedding_prefix(wedding)}photo/Ceremony/b.jpg", size=1,
                        modified=timezone.now() - dt.timedelta(days=2))  # the folder as another key first wrote it
    assert not stray_delete(provider=dropbox, wedding=wedding, info=listed, reason="test")


def test_a_survivor_whose_place_is_unknown_does_not_count(three, policy):
    _, asset, (a, b, c) = three
    b2 = make_provider(name="b2-any", kind="b2", region="", bucket="")  # a key restricted to a bucket it names
    Replica.objects.filter(pk=b.pk).update(provider=b2)
    with pytest.raises(DeleteRefused, match="location is unknown"):
        replica_delete(replica=c, reason="test")
    assert on_disk(c)


def test_no_stray_is_deleted_after_a_database_restore_until_the_catalogue_is_rebuilt(tmp_path, settings):
    wedding = make_wedding()
    provider = folder(tmp_path, "nas-a")
    key = f"{wedding_prefix(wedding)}photo/written-after-the-dump.jpg"
    backend_for(provider).put(key, io.BytesIO(b"x"), 1, sha256=hashlib.sha256(b"x").hexdigest())
    settings.WEDBACKUP_ORPHAN_MIN_AGE = 0
    audit_record(by="cli", action="system_db.restore", target="generation:1")
    report = wedding_verify(wedding=wedding)
    assert report.orphans == [f"nas-a: {key}"] and report.orphans_deleted == 0  # reported, kept
    assert backend_for(provider).head(key) is not None
    audit_record(by="cli", action="catalog.rebuild", target="catalogue")
    assert wedding_verify(wedding=wedding).orphans_deleted == 1
