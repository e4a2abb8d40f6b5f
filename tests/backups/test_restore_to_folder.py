"""Restore a wedding into a folder on the server from the console: validated, queued, run by a real worker."""

import datetime as dt
import hashlib

import pytest

from backups.ingest import wedding_import
from backups.models import BackupJob
from backups.tasks import backup_start
from tests.factories import make_wedding

URL = "/weddings/{slug}/restore-to/"


@pytest.mark.django_db
@pytest.mark.parametrize("path, why", [
    ("relative/folder", "give an absolute path"),
    ("{existing}", "exists and is not an empty folder"),
    ("{file}", "exists and is not an empty folder"),
])
def test_a_bad_folder_is_refused_with_the_reason(staff_client, tmp_path, path, why):
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / "keep.jpg").write_bytes(b"someone's photo")
    (tmp_path / "a-file").write_bytes(b"x")
    wedding = make_wedding()
    target = path.format(existing=tmp_path / "existing", file=tmp_path / "a-file")
    response = staff_client.post(URL.format(slug=wedding.slug), {"path": target}, follow=True)
    assert why in response.content.decode()
    assert not BackupJob.objects.exists()
    assert (tmp_path / "existing" / "keep.jpg").read_bytes() == b"someone's photo"


@pytest.mark.django_db
def test_it_needs_staff(plain_client, tmp_path):
    wedding = make_wedding()
    assert plain_client.post(URL.format(slug=wedding.slug), {"path": str(tmp_path / "new")}).status_code == 403
    assert not BackupJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_restore_to_a_folder_runs_on_a_worker_and_shows_its_progress(staff_client, staff_user, tmp_path,
                                                                        run_workers, three_folder_providers):
    src = tmp_path / "wedding"
    (src / "ceremony").mkdir(parents=True)
    files = {"ceremony/a.jpg": b"\xff\xd8\xff" + b"a" * 5000, "ceremony/b.jpg": b"\xff\xd8\xff" + b"b" * 300,
             "contract.pdf": b"%PDF-1.4 signed"}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    wedding = wedding_import(path=src, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding
    backup_start(wedding=wedding)
    run_workers()

    target = tmp_path / "restored"
    response = staff_client.post(URL.format(slug=wedding.slug), {"path": str(target), "only": "ceremony/*"})
    assert response.status_code == 302
    job = BackupJob.objects.get(kind=BackupJob.Kind.RESTORE)
    assert (job.status, job.requested_by, job.params) == ("queued", staff_user,
                                                          {"to": str(target), "only": "ceremony/*"})
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    assert (job.files_planned, job.files_done, job.files_failed) == (2, 2, 0)
    assert job.bytes_done == job.bytes_planned == len(files["ceremony/a.jpg"]) + len(files["ceremony/b.jpg"])
    restored = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert {k: hashlib.sha256(v).hexdigest() for k, v in restored.items()} == {
        k: hashlib.sha256(v).hexdigest() for k, v in files.items() if k.startswith("ceremony/")}
    page = staff_client.get(f"/weddings/{wedding.slug}/").content.decode()
    assert f'data-job-url="/jobs/{job.pk}.json"' in page or f"/jobs/{job.pk}" in page


@pytest.mark.django_db(transaction=True)
def test_a_folder_filled_after_queueing_is_not_written_into(staff_client, tmp_path, run_workers):
    wedding = make_wedding()
    target = tmp_path / "late"
    staff_client.post(URL.format(slug=wedding.slug), {"path": str(target)})
    target.mkdir()
    (target / "mine.txt").write_text("already here")
    run_workers()
    job = BackupJob.objects.get(kind=BackupJob.Kind.RESTORE)
    assert job.status == BackupJob.Status.FAILED and "not an empty folder" in job.error_summary
    assert [p.name for p in target.iterdir()] == ["mine.txt"]
