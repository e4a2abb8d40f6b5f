import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from providers.models import FailoverEvent, Provider, ProviderHealthCheck
from tests.factories import make_provider

pytestmark = pytest.mark.django_db
ACTIONS = ("mark-down", "mark-up", "probe")


@pytest.fixture
def provider(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    return make_provider(name="nas-1", kind="watched_folder", region="", bucket=str(folder))


@pytest.fixture
def staff_without_permission(django_user_model):
    """Staff who may see the provider pages (a viewer) but not fail over."""
    user = django_user_model.objects.create_user("ops", "ops@example.com", "pw-ops-12345", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_provider"))
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def operator(staff_without_permission):
    user, _ = staff_without_permission
    user.user_permissions.add(Permission.objects.get(codename="can_failover"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return user, client


def csrf(client, url) -> dict:
    return {"csrfmiddlewaretoken": str(client.get(url).context["csrf_token"])}


@pytest.mark.parametrize("action", ACTIONS)
def test_the_buttons_need_the_failover_permission(staff_without_permission, provider, action):
    _, client = staff_without_permission
    html = client.get(f"/providers/{provider.pk}/").content.decode()
    assert f"/providers/{provider.pk}/{action}/" not in html
    assert "can failover" in html
    assert client.get(f"/providers/{provider.pk}/{action}/").status_code == 403
    assert client.post(f"/providers/{provider.pk}/{action}/").status_code == 403
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE


@pytest.mark.parametrize("action", ACTIONS)
def test_non_staff_and_anonymous_users_cannot_act(plain_client, provider, action):
    assert plain_client.post(f"/providers/{provider.pk}/{action}/").status_code == 403
    assert Client().post(f"/providers/{provider.pk}/{action}/").status_code == 302


def test_get_only_asks_for_confirmation(operator, provider):
    _, client = operator
    detail = client.get(f"/providers/{provider.pk}/").content.decode()
    assert f'href="/providers/{provider.pk}/mark-down/"' in detail
    page = client.get(f"/providers/{provider.pk}/mark-down/")
    assert page.status_code == 200
    assert "Mark down: nas-1?" in page.content.decode()
    assert 'method="post"' in page.content.decode()
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE
    assert not FailoverEvent.objects.exists()


def test_posting_without_the_csrf_token_is_refused(operator, provider):
    _, client = operator
    assert client.post(f"/providers/{provider.pk}/mark-down/").status_code == 403
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE


def test_mark_down_then_up(operator, provider, rq_queues, django_capture_on_commit_callbacks):
    user, client = operator
    url = f"/providers/{provider.pk}/mark-down/"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {**csrf(client, url), "reason": "vendor incident 77"})
    assert response.status_code == 302 and response["Location"] == f"/providers/{provider.pk}/"
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DRAINING
    event = FailoverEvent.objects.get(provider=provider)
    assert (event.trigger, event.reason) == ("manual", "vendor incident 77")
    assert "is now draining" in client.get(response["Location"]).content.decode()

    url = f"/providers/{provider.pk}/mark-up/"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, csrf(client, url))
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE
    event.refresh_from_db()
    assert event.resolved_at is not None


def test_probe_now_records_a_health_check(operator, provider):
    _, client = operator
    url = f"/providers/{provider.pk}/probe/"
    assert client.post(url, csrf(client, url)).status_code == 302
    check = ProviderHealthCheck.objects.get(provider=provider)
    assert check.ok, check.error


def test_an_unknown_action_is_404(operator, provider):
    _, client = operator
    assert client.get(f"/providers/{provider.pk}/explode/").status_code == 404
