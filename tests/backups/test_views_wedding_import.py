import pytest
from django.test import Client
from django.urls import reverse

from backups.models import BackupJob, Wedding

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/weddings/import/"


def form(path, **extra):
    return {"path": str(path), "couple": "Ana & Ben", "date": "2026-06-20", "country": "fr", "plan": "premium",
            **extra}


def test_anonymous_users_are_sent_to_log_in(client, tmp_path):
    response = client.post(URL, form(tmp_path))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_non_staff_are_forbidden(plain_client, tmp_path):
    assert plain_client.post(URL, form(tmp_path)).status_code == 403


def test_get_is_not_allowed(staff_client):
    assert staff_client.get(URL).status_code == 405


def test_csrf_is_enforced(staff_user, tmp_path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(URL, form(tmp_path)).status_code == 403


def test_the_list_page_offers_the_import_form(staff_client):
    body = staff_client.get("/weddings/").content.decode()
    assert 'action="/weddings/import/"' in body and 'name="couple"' in body


def test_it_queues_an_import_that_a_worker_runs(staff_client, tmp_path, run_workers):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff photo")
    (tmp_path / "link.jpg").symlink_to(tmp_path / "a.jpg")
    response = staff_client.post(URL, form(tmp_path, requires_ml_analysis="on"))
    assert response.status_code == 302
    job = BackupJob.objects.get(kind="import")
    assert job.status == "queued"
    run_workers()
    job.refresh_from_db()
    wedding = Wedding.objects.get()
    assert (job.status, job.wedding_id, job.files_done, job.files_failed) == ("partial", wedding.pk, 1, 1)
    assert "link.jpg: symbolic link" in job.error_summary
    assert wedding.plan == "premium" and wedding.requires_ml_analysis and wedding.country == "FR"


def test_a_bad_form_says_which_field(staff_client, tmp_path):
    response = staff_client.post(URL, form(tmp_path, country="F1"), follow=True)
    assert "country: Use a two-letter ISO country code." in response.content.decode()
    assert not BackupJob.objects.exists()


def test_a_missing_folder_fails_the_job_clearly(staff_client, tmp_path, run_workers):
    staff_client.post(URL, form(tmp_path / "nope"))
    run_workers()
    job = BackupJob.objects.get(kind="import")
    assert job.status == "failed" and "is not a folder" in job.error_summary
