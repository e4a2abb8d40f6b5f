import hashlib
import io
import zipfile

import pytest
from django.test import Client

from backups.models import BackupJob
from providers.backends import backend_for
from tests.factories import make_asset, make_provider, make_wedding
from tests.views import make_replica

pytestmark = pytest.mark.django_db
ACTIONS = ("backup", "verify", "restore")


@pytest.fixture
def wedding():
    return make_wedding(couple="Ivy & Jon")


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_reject_get(staff_client, wedding, action):
    assert staff_client.get(f"/weddings/{wedding.slug}/{action}/").status_code == 405


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_forbid_non_staff(plain_client, wedding, action):
    assert plain_client.post(f"/weddings/{wedding.slug}/{action}/").status_code == 403
    assert not BackupJob.objects.exists()


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_redirect_anonymous_users(client, wedding, action):
    assert client.post(f"/weddings/{wedding.slug}/{action}/").status_code == 302
    assert not BackupJob.objects.exists()


def test_actions_need_the_csrf_token(staff_user, wedding):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(f"/weddings/{wedding.slug}/backup/").status_code == 403
    assert not BackupJob.objects.exists()
    page = client.get(f"/weddings/{wedding.slug}/")
    token = page.context["csrf_token"]
    assert client.post(f"/weddings/{wedding.slug}/backup/", {"csrfmiddlewaretoken": str(token)}).status_code == 302
    assert BackupJob.objects.filter(wedding=wedding, kind="backup").count() == 1


def test_back_up_now_queues_a_job_for_the_user(staff_client, staff_user, wedding, rq_queues,
                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/weddings/{wedding.slug}/backup/")
    assert response.status_code == 302 and response["Location"] == f"/weddings/{wedding.slug}/"
    job = BackupJob.objects.get(wedding=wedding)
    assert (job.kind, job.status, job.requested_by) == ("backup", "queued", staff_user)
    queue = next(q for q in rq_queues if q.name == job.queue)
    assert [j.func_name for j in queue.jobs] == ["backups.tasks.backup_round"]
    assert f"Backup job #{job.pk} queued" in staff_client.get(response["Location"]).content.decode()


def test_verify_queues_a_verify_job(staff_client, staff_user, wedding, rq_queues, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(f"/weddings/{wedding.slug}/verify/")
    job = BackupJob.objects.get(wedding=wedding)
    assert (job.kind, job.requested_by) == ("verify", staff_user)
    assert rq_queues[2].name == "bulk" and rq_queues[2].count == 1


def test_restore_builds_a_zip_in_a_worker_and_offers_it_once(staff_client, wedding, tmp_path, run_workers,
                                                             django_capture_on_commit_callbacks, settings):
    settings.WEDBACKUP_ZIP_DIR = str(tmp_path / "zips")
    provider = make_provider(kind="watched_folder", region="", bucket=str(tmp_path / "folder"),
                             options={"create": True})
    backend = backend_for(provider)
    data = b"the first kiss, in bytes" * 100
    asset = make_asset(wedding, relative_path="ceremony/kiss.jpg", data=data)
    replica = make_replica(asset, provider)
    backend.put(replica.object_key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(),
                content_type="image/jpeg")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/weddings/{wedding.slug}/restore/")
    assert response.status_code == 302 and response["Location"] == f"/weddings/{wedding.slug}/"
    job = BackupJob.objects.get(wedding=wedding, kind=BackupJob.Kind.RESTORE)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED
    assert f"/jobs/{job.pk}/download/" in staff_client.get(f"/weddings/{wedding.slug}/").content.decode()
    response = staff_client.get(f"/jobs/{job.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f'filename="{wedding.slug}.zip"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert zf.read("ceremony/kiss.jpg") == data
    assert response["X-Restore-Failed-Files"] == "0"
    response.close()  # (the test client's close also ends this test's database connection: nothing after)
    assert not any((tmp_path / "zips").iterdir())  # sent once, then gone


def test_restore_with_nothing_readable_says_why(staff_client, wedding, tmp_path, run_workers,
                                                django_capture_on_commit_callbacks, settings):
    settings.WEDBACKUP_ZIP_DIR = str(tmp_path / "zips")
    provider = make_provider(kind="watched_folder", region="", bucket=str(tmp_path / "empty"), options={"create": True})
    make_replica(make_asset(wedding, relative_path="a.jpg"), provider)  # the row says so; the folder is empty
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(f"/weddings/{wedding.slug}/restore/")
    run_workers()
    job = BackupJob.objects.get(wedding=wedding, kind=BackupJob.Kind.RESTORE)
    assert job.status == BackupJob.Status.FAILED and "Restore failed for 1 of 1 files" in job.error_summary
    page = staff_client.get(f"/weddings/{wedding.slug}/").content.decode()
    assert "Restore failed for 1 of 1 files" in page and f"/jobs/{job.pk}/download/" not in page
    assert staff_client.get(f"/jobs/{job.pk}/download/").status_code == 404


def test_a_wedding_too_big_for_a_zip_is_pointed_to_a_folder_restore(staff_client, wedding, settings):
    settings.WEDBACKUP_ZIP_MAX_BYTES = 10
    make_asset(wedding, relative_path="big.mov", data=b"x" * 11)
    response = staff_client.post(f"/weddings/{wedding.slug}/restore/", follow=True)
    assert "restore it into a server folder instead" in response.content.decode()
    assert not BackupJob.objects.filter(wedding=wedding, kind=BackupJob.Kind.RESTORE).exists()
