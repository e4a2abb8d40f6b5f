"""A check marks damaged only the copy it read: a copy re-uploaded and verified meanwhile stays good."""

import datetime as dt

import pytest
from django.utils import timezone

from backups.damage import replica_mark_damaged
from backups.ingest import wedding_import
from backups.models import Replica
from backups.tasks import backup_start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def verified(two_copy_folders, tmp_path, run_workers) -> Replica:
    two_copy_folders(2)
    src = tmp_path / "wedding"
    src.mkdir()
    (src / "IMG_1.jpg").write_bytes(b"\xff\xd8\xff" + b"x" * 4000)
    wedding = wedding_import(path=src, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding
    backup_start(wedding=wedding)
    run_workers()
    return Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED).first()


def test_the_copy_that_was_read_is_marked_failed_with_the_reason(verified):
    assert replica_mark_damaged(replica=verified, why="scrub: sha256 mismatch")
    verified.refresh_from_db()
    assert (verified.status, verified.last_error) == (Replica.Status.FAILED, "scrub: sha256 mismatch")


def test_a_copy_verified_again_after_the_read_is_left_alone(verified):
    read = Replica.objects.get(pk=verified.pk)  # what the check saw
    Replica.objects.filter(pk=verified.pk).update(verified_at=timezone.now() + dt.timedelta(seconds=1))  # re-upload
    assert not replica_mark_damaged(replica=read, why="scrub: sha256 mismatch")
    assert Replica.objects.get(pk=verified.pk).status == Replica.Status.VERIFIED


def test_a_copy_whose_key_or_content_changed_is_left_alone(verified):
    read = Replica.objects.get(pk=verified.pk)
    Replica.objects.filter(pk=verified.pk).update(sha256="0" * 64)
    assert not replica_mark_damaged(replica=read, why="failover check: size differs")
    read.sha256, read.object_key = "0" * 64, "elsewhere/IMG_1.jpg"
    assert not replica_mark_damaged(replica=read, why="failover check: size differs")
    assert Replica.objects.get(pk=verified.pk).status == Replica.Status.VERIFIED
