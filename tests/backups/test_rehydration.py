"""A file held only in an archive class comes back as a job: requested (audited, behind its own permission), a
second request joins the first, the poll re-enqueues itself with rq's scheduler until the provider serves the copy
(moto's server does Glacier restores), then the requesters are e-mailed, the grid shows it and the download works."""

import datetime as dt
import hashlib
import importlib
import io
import uuid

import boto3
import django_rq
import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client
from django.utils import timezone
from rq.registry import ScheduledJobRegistry

from backups.fetch import FetchError
from backups.models import Asset, AuditEvent, Rehydration
from backups.rehydration import QUEUE, rehydration_poll, rehydration_request, rehydrations_resume
from providers.backends import backend_for
from providers.models import Provider
from tests.factories import make_provider, make_wedding
from tests.views import make_replica

pytestmark = pytest.mark.django_db(transaction=True)
DATA = b"first dance, raw from the second camera" * 1000


@pytest.fixture
def archived(moto_s3):
    """A video whose only copy sits in DEEP_ARCHIVE on moto's S3 server."""
    bucket = f"wb-{uuid.uuid4().hex[:16]}"
    endpoint = str(moto_s3.extra["endpoint"])
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="moto",
                 aws_secret_access_key="moto").create_bucket(Bucket=bucket)
    provider = Provider.objects.create(name="glacier", kind="aws_s3", region="us-east-1", bucket=bucket,
                                       endpoint=endpoint, credentials={"access_key_id": "moto",
                                                                       "secret_access_key": "moto"})
    wedding = make_wedding(couple="Ana & Ben")
    asset = Asset.objects.create(wedding=wedding, relative_path="video/first-dance.mp4", kind="video", size=len(DATA),
                                 sha256=hashlib.sha256(DATA).hexdigest(), content_type="video/mp4")
    replica = make_replica(asset, provider, storage_class="DEEP_ARCHIVE")
    backend_for(provider).put(replica.object_key, io.BytesIO(DATA), len(DATA), sha256=asset.sha256,
                              content_type="video/mp4", storage_class="DEEP_ARCHIVE")
    return asset


ROLES = importlib.import_module("backups.migrations.0012_rehydration").ROLES


def operator(django_user_model, name: str, *, role: str = "operator") -> tuple[Client, object]:
    """A staff user with the role's wedding permissions and what the migration grants it for rehydrations (the
    groups themselves: a transactional test may have flushed them)."""
    user = django_user_model.objects.create_user(name, f"{name}@studio.example", "pw", is_staff=True)
    codenames = ["view_wedding", *(["restore_wedding"] if role != "viewer" else []), *ROLES[role]]
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="backups", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client, user


def url(asset, tail: str = "") -> str:
    return f"/weddings/{asset.wedding.slug}/files/{asset.pk}/{tail}"


def test_a_rehydration_is_a_job_that_emails_when_ready_then_the_file_downloads(django_user_model, archived,
                                                                               run_workers):
    alice, alice_user = operator(django_user_model, "alice")
    bob, _ = operator(django_user_model, "bob")
    page = alice.get(url(archived)).content.decode()
    assert "a rehydration fee applies" in page and "Request rehydration" in page

    response = alice.post(url(archived, "rehydrate/"), follow=True)
    assert "Rehydration of video/first-dance.mp4 requested (glacier" in response.content.decode()
    assert 'data-rehydration="waiting"' in response.content.decode()  # the grid's tile says so
    assert "already requested" in bob.get(url(archived)).content.decode()
    assert "you joined it" in bob.post(url(archived, "rehydrate/"), follow=True).content.decode()
    rehydration = Rehydration.objects.get()
    assert rehydration.status == "waiting" and rehydration.asked_at is None
    assert len(rehydration.notify) == 2 and rehydration.requested_by == alice_user
    events = AuditEvent.objects.filter(action="asset.rehydrate").order_by("pk")
    assert [e.actor_label for e in events] == ["alice", "bob"] and "joined" in events[1].details

    run_workers()  # the poll: asks moto, which restores at once, and finds the copy readable

    rehydration.refresh_from_db()
    assert rehydration.status == "ready" and rehydration.asked_at and rehydration.ready_at
    assert [sorted(m.to) for m in mail.outbox] == [["alice@studio.example", "bob@studio.example"]]
    assert "is back from the archive" in mail.outbox[0].subject
    assert AuditEvent.objects.filter(action="asset.rehydrated").count() == 1
    assert 'data-rehydration="ready"' in alice.get(f"/weddings/{archived.wedding.slug}/").content.decode()

    response = alice.get(url(archived))
    assert response.status_code == 200 and response["X-Served-From"] == "glacier"
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == archived.sha256


def test_a_copy_not_ready_yet_is_polled_again_with_rqs_scheduler_and_given_up_after_days(archived, staff_user,
                                                                                         rq_queues):
    rehydration, new = rehydration_request(asset=archived, by=staff_user)
    assert new
    rehydration.asked_at = timezone.now()  # asked already; moto has not been told, so it still refuses to serve
    rehydration.save()
    rehydration = Rehydration.objects.select_related("replica__provider", "asset__wedding").get()
    assert rehydration_poll(rehydration=rehydration) == "waiting"
    rehydration.refresh_from_db()
    assert rehydration.polls == 1
    scheduled = ScheduledJobRegistry(queue=django_rq.get_queue(QUEUE))
    assert rehydration.rq_job_id in scheduled.get_job_ids()

    rehydration.requested_at = timezone.now() - dt.timedelta(days=4)
    assert rehydration_poll(rehydration=rehydration) == "failed"
    assert "could not be rehydrated" in mail.outbox[-1].subject
    assert AuditEvent.objects.filter(action="asset.rehydrate_failed").exists()
    _, again = rehydration_request(asset=archived, by=staff_user)
    assert again  # a failed one is not joined: a new request starts


def test_a_file_with_a_readable_copy_is_not_rehydrated(archived, staff_user, rq_queues):
    make_replica(archived, make_provider(name="hot"), storage_class="STANDARD")
    with pytest.raises(FetchError, match="can be read now"):
        rehydration_request(asset=archived, by=staff_user)
    assert not Rehydration.objects.exists()


def test_asking_needs_the_rehydrate_permission_which_operators_have(django_user_model, archived, rq_queues):
    viewer, _ = operator(django_user_model, "vera", role="viewer")
    assert viewer.post(url(archived, "rehydrate/")).status_code == 403
    restorer = django_user_model.objects.create_user("rita", "r@studio.example", "pw", is_staff=True)
    restorer.user_permissions.add(Permission.objects.get(codename="restore_wedding"),
                                  Permission.objects.get(codename="view_wedding"))
    client = Client()
    client.force_login(restorer)
    assert "needs the permission backups.rehydrate_asset" in client.get(url(archived)).content.decode()
    assert client.post(url(archived, "rehydrate/")).status_code == 403
    assert "rehydrate_asset" in ROLES["operator"] and "rehydrate_asset" in ROLES["admin"]
    assert not Rehydration.objects.exists()


def test_a_waiting_rehydration_whose_poll_redis_lost_is_resumed_once(archived, staff_user, rq_queues):
    rehydration, _ = rehydration_request(asset=archived, by=staff_user)
    queue = django_rq.get_queue(QUEUE)
    first = Rehydration.objects.get(pk=rehydration.pk).rq_job_id
    assert rehydrations_resume() == 0  # its poll is queued: nothing to do
    queue.connection.flushdb()  # Redis lost it (a flush, a failover without persistence)
    assert rehydrations_resume() == 1
    resumed = Rehydration.objects.get(pk=rehydration.pk).rq_job_id
    assert resumed != first and resumed in queue.get_job_ids()
    assert rehydrations_resume() == 0  # not twice
