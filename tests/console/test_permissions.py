"""Every console URL against every role: anonymous, staff without permissions, viewer, operator, admin, superuser.
django-rq's views are for superusers only."""

import importlib

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from backups.models import Asset
from costs.models import Optimization
from protection.models import Schedule
from tests.factories import make_provider, make_wedding

pytestmark = pytest.mark.django_db
_ROLES = importlib.import_module("console.migrations.0001_groups").GROUPS
_PROTECTION = importlib.import_module("console.migrations.0003_protection_roles").ADDED
_REHYDRATION = importlib.import_module("backups.migrations.0012_rehydration").ROLES
GROUPS = {role: [*perms, *_PROTECTION[role], *(f"backups.{c}" for c in _REHYDRATION[role])]
          for role, perms in _ROLES.items()}
PAGE, ACTION = "page", "action"


@pytest.fixture
def world(rq_queues, tmp_path):
    wedding = make_wedding()
    Asset.objects.create(wedding=wedding, relative_path="ceremony/a.jpg", kind="photo", size=1, sha256="0" * 64)
    provider = make_provider(kind="watched_folder", bucket=str(tmp_path / "nas"), options={"create": True})
    optimization = Optimization.objects.create(wedding=wedding, kind=Optimization.Kind.LIFECYCLE, summary="s",
                                               changes=[], current_monthly=1, new_monthly=1)
    schedule, _ = Schedule.objects.get_or_create(task=Schedule.Task.SCRUB, plan="",
                                                 defaults={"interval_minutes": 1440})
    return wedding, provider, optimization, schedule


def urls(wedding, provider, optimization, schedule):
    """(method, url, permission it needs, page or action)."""
    w = wedding.slug
    return [
        ("get", "/protection/schedules/", "protection.view_schedule", PAGE),
        ("get", "/protection/alerts/", "protection.view_alert", PAGE),
        ("get", "/protection/", "protection.view_drill", PAGE),
        ("post", f"/protection/schedules/{schedule.pk}/", "protection.change_schedule", ACTION),
        ("post", f"/protection/schedules/{schedule.pk}/run/", "protection.run_schedule", ACTION),
        ("get", "/", "backups.view_wedding", PAGE),
        ("post", "/refresh/", "backups.backup_wedding", ACTION),
        ("get", "/weddings/", "backups.view_wedding", PAGE),
        ("get", f"/weddings/{w}/", "backups.view_wedding", PAGE),
        ("get", f"/weddings/{w}/timeline/", "backups.view_wedding", PAGE),
        ("get", "/search/?q=Ana", "backups.view_wedding", PAGE),
        ("post", "/weddings/import/", "backups.import_wedding", ACTION),
        ("post", f"/weddings/{w}/backup/", "backups.backup_wedding", ACTION),
        ("post", f"/weddings/{w}/verify/", "backups.backup_wedding", ACTION),
        ("post", f"/weddings/{w}/restore/", "backups.restore_wedding", ACTION),
        ("post", f"/weddings/{w}/restore-to/", "backups.restore_wedding", ACTION),
        ("get", f"/weddings/{w}/files/{wedding.assets.get().pk}/", "backups.restore_wedding", PAGE),
        ("post", f"/weddings/{w}/files/{wedding.assets.get().pk}/rehydrate/", "backups.rehydrate_asset", ACTION),
        ("post", f"/weddings/{w}/files/zip/", "backups.restore_wedding", ACTION),
        ("get", f"/weddings/{w}/files/{wedding.assets.get().pk}/thumbnail.jpg", "backups.view_wedding", PAGE),
        ("get", "/audit/", "backups.view_auditevent", PAGE),
        ("get", "/jobs/", "backups.view_backupjob", PAGE),
        ("get", "/jobs/999999.json", "backups.view_backupjob", PAGE),
        ("post", "/jobs/999999/retry/", "backups.backup_wedding", ACTION),
        ("get", "/jobs/999999/download/", "backups.restore_wedding", PAGE),
        ("get", "/providers/", "providers.view_provider", PAGE),
        ("get", f"/providers/{provider.pk}/", "providers.view_provider", PAGE),
        ("get", f"/providers/{provider.pk}/probe/", "providers.can_failover", PAGE),
        ("get", "/costs/", "costs.view_optimization", PAGE),
        ("post", f"/costs/optimizations/{optimization.pk}/apply/", "costs.apply_optimization", ACTION),
        ("post", "/costs/optimizations/apply-all/", "costs.apply_optimization", ACTION),
    ]


def user_in(django_user_model, name, *, groups=(), superuser=False):
    user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw", is_staff=True,
                                                 is_superuser=superuser)
    for group in groups:  # the groups the data migration makes (a transactional test may have flushed them)
        g, _ = Group.objects.get_or_create(name=group)
        for perm in GROUPS[group]:
            app, codename = perm.split(".")
            g.permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
        user.groups.add(g)
    return user


def call(client, method, url):
    return getattr(client, method)(url)


def test_anonymous_visitors_are_sent_to_log_in(world):
    for method, url, _, _ in urls(*world):
        response = call(Client(), method, url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), (method, url)


def test_staff_without_permissions_reach_nothing(world, django_user_model):
    client = Client()
    client.force_login(user_in(django_user_model, "bare"))
    for method, url, _, _ in urls(*world):
        assert call(client, method, url).status_code == 403, (method, url)


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_each_role_reaches_exactly_what_its_permissions_name(world, django_user_model, role):
    client = Client()
    user = user_in(django_user_model, role, groups=[role])
    client.force_login(user)
    for method, url, perm, _ in urls(*world):
        status = call(client, method, url).status_code
        if perm in GROUPS[role]:
            assert status != 403, (role, method, url, status)
        else:
            assert status == 403, (role, method, url, status)


def test_the_roles_nest_and_viewers_change_nothing():
    assert set(GROUPS["viewer"]) < set(GROUPS["operator"]) < set(GROUPS["admin"])
    assert not [p for p in GROUPS["viewer"] if not p.split(".")[1].startswith("view_")]


def test_superusers_reach_everything(world, django_user_model):
    client = Client()
    client.force_login(user_in(django_user_model, "root", superuser=True))
    for method, url, _, _ in urls(*world):
        assert call(client, method, url).status_code != 403, (method, url)


def test_django_rq_views_are_for_superusers_only(django_user_model):
    operator = Client()
    operator.force_login(user_in(django_user_model, "op", groups=["admin"]))
    assert operator.get("/admin/rq/").status_code == 403
    assert operator.post("/admin/rq/queues/0/empty/").status_code == 403
    root = Client()
    root.force_login(user_in(django_user_model, "root", superuser=True))
    assert root.get("/admin/rq/").status_code == 200
    assert Client().get("/admin/rq/")["Location"].startswith("/accounts/login/")


def test_django_rq_views_stay_closed_when_the_console_is_served_under_a_prefix(django_user_model):
    """Behind a proxy at /wedbackup/ (SCRIPT_NAME) the views still resolve by path_info: so must the guard."""
    operator = Client()
    operator.force_login(user_in(django_user_model, "op", groups=["admin"]))
    assert operator.get("/admin/rq/", SCRIPT_NAME="/wedbackup").status_code == 403
    assert operator.post("/admin/rq/queues/0/empty/", SCRIPT_NAME="/wedbackup").status_code == 403

