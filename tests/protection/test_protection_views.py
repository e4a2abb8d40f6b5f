"""The protection page: who may see it, and what it shows of scrubs and drills."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from protection.models import Drill, ScrubRun
from tests.factories import make_provider

pytestmark = pytest.mark.django_db
URL = "/protection/"
_ROLES = importlib.import_module("console.migrations.0001_groups").GROUPS
_PROTECTION = importlib.import_module("console.migrations.0003_protection_roles").ADDED


def _user(django_user_model, name, *, role=None, perms=()):
    user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw", is_staff=True)
    names = [*_ROLES[role], *_PROTECTION[role]] if role else list(perms)
    for perm in names:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_visitors_are_sent_to_log_in():
    response = Client().get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_staff_without_the_permission_get_403(django_user_model):
    assert _user(django_user_model, "bare").get(URL).status_code == 403
    assert _user(django_user_model, "scrubs-only", perms=["protection.view_scrubrun"]).get(URL).status_code == 403


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_sees_the_page_and_the_nav_link(django_user_model, role):
    response = _user(django_user_model, role, role=role).get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-nav="protection"' in page and 'id="scrub"' in page and 'id="drills"' in page


def test_it_shows_scrub_progress_runs_and_the_last_drill_per_provider(django_user_model, tmp_path):
    now = timezone.now()
    full = now - dt.timedelta(days=12)
    ScrubRun.objects.create(started_at=now - dt.timedelta(hours=1), finished_at=now, replicas_checked=40,
                            bytes_read=5 * 10**6, mismatches=1, repairs_started=1,
                            detail={"cycle_days": 30, "mismatched": ["s3: weddings/a/photo/x.jpg: sha256 differs"],
                                    "progress": {"verified": 200, "within_cycle": 150, "never": 0,
                                                 "last_full_cycle": full.isoformat()}})
    good = make_provider(name="nas", kind="watched_folder", bucket=str(tmp_path / "nas"))
    bad = make_provider(name="s3-east")
    make_provider(name="untested")
    Drill.objects.create(provider=good, started_at=now - dt.timedelta(days=8), finished_at=now, ok=False, files=1,
                         failures=[{"path": "a/old.jpg", "reason": "old failure"}])
    Drill.objects.create(provider=good, started_at=now - dt.timedelta(days=1), finished_at=now, ok=True, files=5,
                         bytes=10 * 2**20, seconds=2.0)
    Drill.objects.create(provider=good, started_at=now, finished_at=now, detail="skipped: another drill")
    Drill.objects.create(provider=bad, started_at=now, finished_at=now, ok=False, files=4,
                         failures=[{"path": "a/x.jpg", "reason": "sha256 of the restored bytes differs"}])
    page = _user(django_user_model, "viewer", role="viewer").get(URL).content.decode()
    assert 'data-stat="scrub-share">75.0%' in page and "of 200 copies read back within 30 days" in page
    assert full.strftime("%Y-%m-%d") in page and "sha256 differs" in page
    rows = {name: page.split(f'data-drill-provider="{name}"')[1].split("</tr>")[0]
            for name in ("nas", "s3-east", "untested")}
    assert "passed" in rows["nas"] and "5.0\xa0MB/s" in rows["nas"] and "old failure" not in rows["nas"]
    assert "failed" in rows["s3-east"] and "a/x.jpg" in rows["s3-east"] and "1 failed" in rows["s3-east"]
    assert "no drill yet" in rows["untested"]


def test_before_any_scrub_it_says_so(django_user_model):
    page = _user(django_user_model, "viewer", role="viewer").get(URL).content.decode()
    assert 'data-empty="scrub"' in page
