import pytest
from django.test import Client

from backups.models import BackupJob
from tests.factories import make_wedding
from tests.views import assert_login_redirect, queries_for

pytestmark = pytest.mark.django_db
URL = "/jobs/"


def test_it_redirects_anonymous_users(client):
    assert_login_redirect(client.get(URL), URL)


def test_it_forbids_non_staff(plain_client):
    assert plain_client.get(URL).status_code == 403


def test_it_shows_queue_depths_from_redis(staff_client, rq_queues, django_capture_on_commit_callbacks):
    bulk = next(q for q in rq_queues if q.name == "bulk")
    with django_capture_on_commit_callbacks(execute=True):  # django-rq enqueues on commit
        for n in range(3):
            bulk.enqueue("backups.tasks.verify_job", n)
    html = staff_client.get(URL).content.decode()
    assert 'data-queue="bulk">3<' in html
    assert 'data-queue="critical">0<' in html
    assert 'href="/admin/rq/"' in html  # django-rq's own views


def test_it_lists_running_and_failed_jobs_with_errors(staff_client):
    running = BackupJob.objects.create(wedding=make_wedding(), kind="backup", status="running", files_planned=10,
                                       files_done=3)
    failed = BackupJob.objects.create(wedding=make_wedding(), kind="backup", status="failed",
                                      error_summary="IMG_0001.jpg: 1 of 3 verified copies (b2: quota exceeded)")
    BackupJob.objects.create(wedding=make_wedding(), kind="backup", status="succeeded")
    html = staff_client.get(URL).content.decode()
    assert f'/jobs/{running.pk}.json' in html and 'aria-valuenow="30"' in html
    assert "quota exceeded" in html
    assert f'action="/jobs/{failed.pk}/retry/"' in html


def test_the_progress_json_has_status_percent_and_counters(staff_client):
    job = BackupJob.objects.create(wedding=make_wedding(), kind="backup", status="running", bytes_planned=1000,
                                   bytes_done=250, files_planned=4, files_done=1)
    data = staff_client.get(f"/jobs/{job.pk}.json").json()
    assert data["status"] == "running" and data["active"] is True
    assert data["percent"] == 25
    assert data["files"] == {"planned": 4, "done": 1, "failed": 0}
    assert data["bytes"]["done"] == 250
    assert Client().get(f"/jobs/{job.pk}.json").status_code == 302
    assert staff_client.get("/jobs/999999.json").status_code == 404


def test_retry_runs_the_backup_again_for_the_wedding(staff_client, staff_user, rq_queues,
                                                      django_capture_on_commit_callbacks):
    wedding = make_wedding()
    failed = BackupJob.objects.create(wedding=wedding, kind="backup", status="failed", queue="default")
    assert staff_client.get(f"/jobs/{failed.pk}/retry/").status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/jobs/{failed.pk}/retry/")
    assert response.status_code == 302
    new = BackupJob.objects.exclude(pk=failed.pk).get()
    assert (new.wedding, new.kind, new.status, new.requested_by) == (wedding, "backup", "queued", staff_user)
    assert sum(q.count for q in rq_queues) == 1


def test_retry_needs_staff_and_csrf(plain_client, staff_user):
    failed = BackupJob.objects.create(wedding=make_wedding(), kind="backup", status="failed")
    assert plain_client.post(f"/jobs/{failed.pk}/retry/").status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    assert strict.post(f"/jobs/{failed.pk}/retry/").status_code == 403
    assert BackupJob.objects.count() == 1


def test_a_fleet_job_cannot_be_retried_here(staff_client):
    job = BackupJob.objects.create(kind="optimise", status="failed")
    response = staff_client.post(f"/jobs/{job.pk}/retry/", follow=True)
    assert "cannot be retried from here" in response.content.decode()
    assert BackupJob.objects.count() == 1


def test_the_query_count_does_not_grow_with_the_jobs(staff_client, rq_queues):
    def add(n):
        for _ in range(n):
            wedding = make_wedding()
            BackupJob.objects.create(wedding=wedding, kind="backup", status="running")
            BackupJob.objects.create(wedding=wedding, kind="backup", status="failed", error_summary="x")

    add(5)
    few = queries_for(staff_client, URL)
    add(45)
    assert queries_for(staff_client, URL) == few
