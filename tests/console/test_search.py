"""The search page: weddings by couple, city or date, files by name, across the fleet; permissions; the index."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client

from backups.search import FILES_CAP, assets_candidates, assets_matching, search_date_range, weddings_matching
from tests.factories import make_asset, make_wedding
from tests.views import assert_login_redirect

pytestmark = pytest.mark.django_db
URL = "/search/"


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user("viewer", "v@example.com", "pw-viewer-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_wedding"))
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_visitors_are_sent_to_log_in():
    assert_login_redirect(Client().get(f"{URL}?q=Ana"), URL)


def test_staff_without_the_view_permission_get_403(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("bare", "b@example.com", "pw", is_staff=True))
    assert client.get(f"{URL}?q=Ana").status_code == 403
    assert 'data-search="topbar"' not in client.get("/admin/").content.decode()


def test_a_viewer_searches_and_every_page_has_the_box(viewer):
    assert viewer.get(f"{URL}?q=Ana").status_code == 200
    assert 'data-search="topbar"' in viewer.get("/weddings/").content.decode()


def test_weddings_are_found_by_couple_and_city_and_link_to_their_page(viewer):
    ana = make_wedding(couple="Ana Johnson & Ben Okafor", city="Lisbon")
    make_wedding(couple="Carla & Dev", city="Porto")
    html = viewer.get(f"{URL}?q=johnson").content.decode()
    assert f'href="/weddings/{ana.slug}/"' in html and "Carla" not in html
    assert list(weddings_matching(query="lisbon")) == [ana]


def test_weddings_are_found_by_day_or_month():
    june = make_wedding(couple="June One", date=dt.date(2024, 6, 1))
    later = make_wedding(couple="June Late", date=dt.date(2024, 6, 30))
    make_wedding(couple="July", date=dt.date(2024, 7, 1))
    assert list(weddings_matching(query="2024-06-01")) == [june]
    assert list(weddings_matching(query="2024-06")) == [june, later]
    assert search_date_range(query="2024-13") is None and search_date_range(query="june") is None


def test_files_are_found_by_name_across_weddings(viewer):
    first, second = make_wedding(couple="First Couple"), make_wedding(couple="Second Couple")
    make_asset(first, relative_path="video/first-dance.mp4", kind="video")
    make_asset(second, relative_path="ceremony/FIRST-DANCE-2.mov", kind="video")
    make_asset(second, relative_path="ceremony/IMG_0001.jpg")
    html = viewer.get(f"{URL}?q=first-dance").content.decode()
    assert "video/first-dance.mp4" in html and "ceremony/FIRST-DANCE-2.mov" in html and "IMG_0001" not in html
    assert f'href="/weddings/{first.slug}/"' in html and f'href="/weddings/{second.slug}/"' in html


def test_special_characters_are_matched_literally():
    wedding = make_wedding()
    make_asset(wedding, relative_path="raw/ab%cd.dng", kind="raw")
    make_asset(wedding, relative_path="raw/abXYcd.dng", kind="raw")
    assert [a.relative_path for a in assets_matching(query="b%c")] == ["raw/ab%cd.dng"]


def test_results_are_paginated(viewer):
    wedding = make_wedding(couple="Paged")
    for n in range(30):
        make_asset(wedding, relative_path=f"portraits/portrait-{n:02d}.jpg")
    first = viewer.get(f"{URL}?q=portrait")
    assert first.context["files"].paginator.count == 30 and len(first.context["files"].object_list) == 25
    second = viewer.get(f"{URL}?q=portrait&fpage=2")
    assert len(second.context["files"].object_list) == 5
    assert "fpage=2" in first.content.decode()


def test_too_short_a_query_asks_for_more(viewer):
    response = viewer.get(f"{URL}?q=ab")
    assert 'data-state="too-short"' in response.content.decode() and response.context["files"] is None


def test_files_are_capped_before_ranking(settings, monkeypatch):
    import backups.search

    monkeypatch.setattr(backups.search, "FILES_CAP", 3)
    wedding = make_wedding()
    for n in range(5):
        make_asset(wedding, relative_path=f"detail/ring-{n}.jpg")
    assert assets_matching(query="ring").count() == 3
    assert FILES_CAP >= 1000


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram search is PostgreSQL only")
def test_a_typo_still_finds_the_couple_on_postgresql():
    wedding = make_wedding(couple="Ana Johnson & Ben Okafor")
    assert list(weddings_matching(query="Johnsen")) == [wedding]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes are PostgreSQL only")
@pytest.mark.parametrize(("selector", "query", "indexes"), [
    (assets_candidates, "first-dance", {"asset_path_trgm"}),
    (assets_matching, "first-dance", {"asset_path_trgm"}),
    (weddings_matching, "johnson", {"wedding_couple_trgm", "wedding_city_trgm"}),
])
def test_the_search_uses_the_trigram_index(selector, query, indexes):
    wedding = make_wedding(couple="Ana Johnson")
    make_asset(wedding, relative_path="video/first-dance.mp4", kind="video")
    sql, params = selector(query=query).query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a tiny table is cheaper to scan: can the index serve it?
        cur.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert all(index in plan for index in indexes), plan
