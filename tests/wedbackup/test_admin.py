import pytest
from django.urls import reverse

from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db

SECRET = "super-secret-value-123456"

ADMIN_LISTS = [
    "admin:backups_wedding_changelist", "admin:backups_asset_changelist", "admin:backups_backuppolicy_changelist",
    "admin:backups_backupjob_changelist", "admin:backups_replica_changelist", "admin:backups_auditevent_changelist",
    "admin:providers_provider_changelist", "admin:providers_providerhealthcheck_changelist",
    "admin:providers_failoverevent_changelist", "admin:costs_optimization_changelist",
    "admin:costs_catalogversion_changelist", "admin:costs_accessrecord_changelist",
]


@pytest.mark.parametrize("name", ADMIN_LISTS)
def test_admin_lists_load_for_staff(staff_client, name):
    make_asset(make_wedding())
    assert staff_client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", ADMIN_LISTS[:3])
def test_admin_redirects_anonymous_users(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_provider_page_never_renders_the_secret(staff_client):
    provider = make_provider(credentials={"secret_access_key": SECRET})
    response = staff_client.get(reverse("admin:providers_provider_change", args=[provider.pk]))
    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert "secret_access_key" in response.content.decode()  # the name is shown, masked


def test_saving_a_provider_without_new_credentials_keeps_the_old_ones(staff_client):
    provider = make_provider(credentials={"secret_access_key": SECRET})
    url = reverse("admin:providers_provider_change", args=[provider.pk])
    data = {"name": provider.name, "kind": "aws_s3", "region": "eu-west-1", "bucket": provider.bucket,
            "options": "{}", "status": "active", "enabled": "on", "new_credentials": ""}
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    provider.refresh_from_db()
    assert provider.credentials == {"secret_access_key": SECRET}
    assert provider.residency_zone == "EU"


def test_invalid_credentials_json_is_rejected_with_a_clear_message(staff_client):
    data = {"name": "p1", "kind": "aws_s3", "bucket": "b", "options": "{}", "status": "active",
            "new_credentials": "{not json"}
    response = staff_client.post(reverse("admin:providers_provider_add"), data)
    assert response.status_code == 200
    assert "Credentials must be a JSON object" in response.content.decode()


def test_the_rq_dashboard_is_reachable_for_staff(staff_client):
    assert staff_client.get(reverse("django_rq:home")).status_code == 200


def test_the_rq_dashboard_is_not_reachable_for_anonymous_users(client):
    response = client.get(reverse("django_rq:home"))
    assert response.status_code in (302, 403)


@pytest.mark.django_db(transaction=True)
def test_the_admin_rescans_a_wedding_folder_and_queues_backups(staff_client, tmp_path, rq_queues):
    import datetime as dt

    from backups.ingest import wedding_import
    from backups.models import BackupJob

    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff one")
    wedding = wedding_import(path=tmp_path, couple="A & B", date=dt.date(2026, 1, 1), country="US").wedding
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff two")
    url = reverse("admin:backups_wedding_changelist")
    response = staff_client.post(url, {"action": "rescan", "_selected_action": [wedding.pk]}, follow=True)
    assert "1 added, 0 changed, 0 removed" in response.content.decode()
    staff_client.post(url, {"action": "back_up_now", "_selected_action": [wedding.pk]})
    assert BackupJob.objects.filter(wedding=wedding, kind="backup").count() == 1
