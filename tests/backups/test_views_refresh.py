import django_rq
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
URL = "/refresh/"


def queued(queue_name="bulk") -> list[str]:
    queue = django_rq.get_queue(queue_name)
    return [queue.fetch_job(j).func_name for j in queue.get_job_ids()]


def test_it_queues_a_full_refresh_and_returns_to_the_page(staff_client, rq_queues):
    response = staff_client.post(URL, {"next": "/costs/?page=2"})
    assert response.status_code == 302 and response["Location"] == "/costs/?page=2"
    assert queued() == ["console.tasks.snapshots_refresh"]
    job = django_rq.get_queue("bulk").fetch_job(django_rq.get_queue("bulk").get_job_ids()[0])
    assert job.kwargs == {"costs": True}


def test_it_never_redirects_off_site(staff_client, rq_queues):
    response = staff_client.post(URL, {"next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_it_needs_staff_a_post_and_csrf(plain_client, staff_user, rq_queues):
    assert Client().post(URL)["Location"].startswith("/accounts/login/")
    assert plain_client.post(URL).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    assert strict.post(URL).status_code == 403
    assert strict.get(URL).status_code == 405
    assert queued() == []
