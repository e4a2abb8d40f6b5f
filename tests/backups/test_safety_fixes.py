"""Data-safety fixes found in review (issue 15, item 7): each case fails on the code before the fix."""

import datetime as dt
import hashlib
import io
import os
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from backups.ingest import import_run, scan_folder
from backups.layout import object_key
from backups.models import BackupJob, BackupPolicy, Plan, Replica
from backups.restore import wedding_restore
from backups.sharing import wedding_share
from providers.backends import backend_for
from providers.backends.base import PermanentError
from tests.factories import make_asset, make_provider, make_wedding
from tests.fixtures.dropbox import TOKEN

pytestmark = pytest.mark.django_db


# -- import: nothing skipped silently, nothing left running ---------------------------------------------------
def test_a_folder_that_cannot_be_read_is_reported_not_skipped(tmp_path, monkeypatch):
    (tmp_path / "ceremony").mkdir()
    (tmp_path / "ceremony" / "a.jpg").write_bytes(b"a")
    (tmp_path / "b.pdf").write_bytes(b"b")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "ceremony":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    results = list(scan_folder(tmp_path))
    problems = {r.relative_path: r.reason for r in results if not hasattr(r, "sha256")}
    assert "ceremony" in problems and "cannot be read" in problems["ceremony"]
    assert [r.relative_path for r in results if hasattr(r, "sha256")] == ["b.pdf"]


def test_a_non_utf8_name_of_a_symlinked_folder_neither_crashes_nor_leaves_the_job_running(tmp_path):
    src = tmp_path / "wedding"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"\xff\xd8\xff" + b"a" * 50)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", os.fsencode(src) + b"/caf\xe9")  # Latin-1 name: not UTF-8
    job = BackupJob.objects.create(kind=BackupJob.Kind.IMPORT, params={
        "path": str(src), "couple": "Ana & Ben", "date": "2026-06-20", "country": "FR"})
    import_run(job=job)
    job.refresh_from_db()
    assert job.status == BackupJob.Status.PARTIAL and job.files_done == 1
    assert "caf\\xe9" in job.error_summary and "symbolic link" in job.error_summary


# -- policy overrides are a policy too --------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    ({Plan.COST_SAVER: {"min_copies": 0}}, "at least 1"),
    ({Plan.PREMIUM: {"min_copies": 1, "min_distinct_providers": 2}}, "between 1 and min_copies"),
    ({"gold": {"min_copies": 4}}, "not a plan"),
    ({Plan.PREMIUM: {"min_copies": "4"}}, "non-negative integer"),
    ({Plan.PREMIUM: {"enforce_residency": 0}}, "boolean"),
    ({Plan.PREMIUM: {"delete_everything": True}}, "cannot be overridden"),
    ({Plan.PREMIUM: 4}, "mapping"),
])
def test_plan_overrides_that_would_weaken_or_break_the_policy_are_refused(overrides, message):
    policy = BackupPolicy(name=f"p-{uuid.uuid4().hex[:6]}", plan_overrides=overrides)
    with pytest.raises(ValidationError, match=message):
        policy.full_clean()


def test_sensible_plan_overrides_pass():
    policy = BackupPolicy(name="p", plan_overrides={Plan.PREMIUM: {"min_copies": 4}, Plan.COST_SAVER: {
        "min_copies": 2, "min_distinct_providers": 2, "client_side_encryption": True}})
    policy.full_clean()
    assert policy.for_plan(Plan.PREMIUM)["min_copies"] == 4


# -- restore: one bad path skips one file -------------------------------------------------------------------------
def test_a_bad_relative_path_skips_that_file_and_the_restore_goes_on(tmp_path):
    folder = make_provider(kind="watched_folder", bucket=str(tmp_path / "nas"), options={"create": True})
    wedding = make_wedding()
    good = make_asset(wedding, relative_path="ceremony/a.jpg", data=b"good bytes")
    bad = make_asset(wedding, relative_path="../../escape.jpg", data=b"bad bytes")
    for asset, data in ((good, b"good bytes"), (bad, b"bad bytes")):
        key = object_key(good) + ("-bad" if asset is bad else "")
        info = backend_for(folder).put(key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest())
        Replica.objects.create(asset=asset, provider=folder, object_key=key, status=Replica.Status.VERIFIED,
                               size=len(data), sha256=asset.sha256, checksums=info.checksums)
    report = wedding_restore(wedding=wedding, to=tmp_path / "out")
    assert report.restored == ["ceremony/a.jpg"]
    assert "outside" in report.failed["../../escape.jpg"]
    assert (tmp_path / "out" / "ceremony" / "a.jpg").read_bytes() == b"good bytes"
    assert not (tmp_path / "escape.jpg").exists()


# -- Dropbox: case-insensitive names, links that really go -----------------------------------------------------
def test_dropbox_refuses_a_key_that_differs_from_a_stored_one_only_in_case(make_dropbox_backend):
    backend = make_dropbox_backend()
    backend.ensure_root()
    first = b"\xff\xd8\xff first"
    backend.put("weddings/x/photo/DSC_1.JPG", io.BytesIO(first), len(first), sha256=hashlib.sha256(first).hexdigest())
    other = b"\xff\xd8\xff another photo"
    with pytest.raises(PermanentError, match="only in case"):
        backend.put("weddings/x/photo/dsc_1.jpg", io.BytesIO(other), len(other),
                    sha256=hashlib.sha256(other).hexdigest())
    with backend.open("weddings/x/photo/DSC_1.JPG") as fh:
        assert fh.read() == first
    newer = b"\xff\xd8\xff first, edited"  # the same key may still be overwritten
    backend.put("weddings/x/photo/DSC_1.JPG", io.BytesIO(newer), len(newer), sha256=hashlib.sha256(newer).hexdigest())


def test_withdrawing_consent_revokes_the_link_on_dropbox_itself(dropbox_fake):
    provider = make_provider(name=f"dropbox-{uuid.uuid4().hex[:6]}", kind="dropbox", region="",
                             bucket=f"WedBackup-{uuid.uuid4().hex[:12]}", credentials={"access_token": TOKEN})
    backend = backend_for(provider)
    backend.ensure_root()
    wedding = make_wedding(sharing_allowed=True, date=dt.date(2026, 6, 20))
    asset = make_asset(wedding, data=b"photo")
    backend.put(object_key(asset), io.BytesIO(b"photo"), 5, sha256=hashlib.sha256(b"photo").hexdigest())
    Replica.objects.create(asset=asset, provider=provider, object_key=object_key(asset), size=5,
                           status=Replica.Status.VERIFIED, sha256=asset.sha256)
    link = wedding_share(wedding=wedding)
    assert any(md["url"] == link for md in dropbox_fake.links.values())
    wedding.sharing_allowed = False
    wedding.save()
    assert wedding_share(wedding=wedding) == ""
    wedding.refresh_from_db()
    assert wedding.shared_link == ""
    assert not any(md["url"] == link for md in dropbox_fake.links.values())  # gone for whoever holds it


def test_a_file_that_cannot_be_written_where_the_catalogue_puts_it_fails_alone(tmp_path):
    folder = make_provider(kind="watched_folder", bucket=str(tmp_path / "nas"), options={"create": True})
    wedding = make_wedding()
    for rel, data in (("x", b"a file named x"), ("x/y.jpg", b"a file inside a folder named x")):
        asset = make_asset(wedding, relative_path=rel, data=data)
        key = f"weddings/{wedding.slug}/{len(rel)}"
        info = backend_for(folder).put(key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest())
        Replica.objects.create(asset=asset, provider=folder, object_key=key, status=Replica.Status.VERIFIED,
                               size=len(data), sha256=asset.sha256, checksums=info.checksums)
    report = wedding_restore(wedding=wedding, to=tmp_path / "out")
    assert report.restored == ["x"] and "cannot write it here" in report.failed["x/y.jpg"]
