import hashlib
import io
import tempfile
import zipfile
from pathlib import Path

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


def test_restore_downloads_a_zip_of_the_files(staff_client, wedding, tmp_path):
    provider = make_provider(kind="watched_folder", region="", bucket=str(tmp_path / "folder"),
                             options={"create": True})
    backend = backend_for(provider)
    data = b"the first kiss, in bytes" * 100
    asset = make_asset(wedding, relative_path="ceremony/kiss.jpg", data=data)
    replica = make_replica(asset, provider)
    backend.put(replica.object_key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(),
                content_type="image/jpeg")

    response = staff_client.post(f"/weddings/{wedding.slug}/restore/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f'filename="{wedding.slug}.zip"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    response.close()
    assert not list(Path(tempfile.gettempdir()).glob(f"restore-{wedding.slug}-*"))  # the work folder is gone
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert zf.read("ceremony/kiss.jpg") == data
    assert response["X-Restore-Failed-Files"] == "0"


def test_restore_with_nothing_readable_says_why(staff_client, wedding, tmp_path):
    provider = make_provider(kind="watched_folder", region="", bucket=str(tmp_path / "empty"), options={"create": True})
    make_replica(make_asset(wedding, relative_path="a.jpg"), provider)  # the row says so; the folder is empty
    response = staff_client.post(f"/weddings/{wedding.slug}/restore/", follow=True)
    assert response.redirect_chain[-1][0] == f"/weddings/{wedding.slug}/"
    assert "Restore failed for all 1 files" in response.content.decode()
    assert not list(Path(tempfile.gettempdir()).glob(f"restore-{wedding.slug}-*"))
