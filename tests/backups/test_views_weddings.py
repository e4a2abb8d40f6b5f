import re

import pytest

from backups.snapshots import fleet_health_refresh, wedding_refresh
from tests.factories import make_asset, make_provider, make_wedding
from tests.views import assert_login_redirect, make_replica, queries_for

pytestmark = pytest.mark.django_db
URL = "/weddings/"


@pytest.fixture
def providers():
    return [make_provider(kind="aws_s3", region="us-east-1"), make_provider(kind="b2", region="us-west-004"),
            make_provider(kind="gcs", region="us-east1")]


def wedding_with_copies(providers, copies: int, **kwargs):
    wedding = make_wedding(**kwargs)
    for size in (100, 300):
        asset = make_asset(wedding, size=size)
        for p in providers[:copies]:
            make_replica(asset, p)
    return wedding


def slugs(response) -> list[str]:
    return re.findall(r'href="/weddings/([\w-]+)/"', response.content.decode())


def test_it_redirects_anonymous_users(client):
    assert_login_redirect(client.get(URL), URL)


def test_it_forbids_non_staff(plain_client):
    assert plain_client.get(URL).status_code == 403


def test_it_lists_weddings_with_bytes_files_and_copies(staff_client, providers):
    wedding = wedding_with_copies(providers, 3, couple="Cleo & Dan")
    wedding_refresh(wedding)
    html = staff_client.get(URL).content.decode()
    row = html[html.index("Cleo &amp; Dan"):]
    row = row[:row.index("</tr>")]
    assert "400\xa0bytes" in row
    assert '<td class="num">2</td>' in row  # files
    assert '<td class="num">3.0</td>' in row  # good copies per file
    assert "status-protected" in row
    assert wedding.slug in row


def test_it_searches_by_couple_and_slug(staff_client):
    cleo = make_wedding(couple="Cleo & Dan")
    make_wedding(couple="Eve & Finn")
    assert slugs(staff_client.get(URL, {"q": "cleo"})) == [cleo.slug]
    assert slugs(staff_client.get(URL, {"q": cleo.slug[:12]})) == [cleo.slug]


def test_it_filters_by_residency_plan_and_status(staff_client, providers):
    safe = wedding_with_copies(providers, 3)
    short = wedding_with_copies(providers, 1)
    eu = make_wedding(country="DE", plan="premium")
    fleet_health_refresh()
    fresh = make_wedding()  # created after the last refresh: in neither status until it has been checked
    assert slugs(staff_client.get(URL, {"residency": "EU"})) == [eu.slug]
    assert slugs(staff_client.get(URL, {"plan": "premium"})) == [eu.slug]
    assert slugs(staff_client.get(URL, {"status": "at-risk"})) == [short.slug]
    assert set(slugs(staff_client.get(URL, {"status": "protected"}))) == {safe.slug, eu.slug}  # eu: no files
    html = staff_client.get(URL).content.decode()
    row = html[html.index(fresh.slug):]
    assert "not checked yet" in row[:row.index("</tr>")]


def test_it_paginates_and_keeps_the_filters(staff_client):
    for n in range(30):
        make_wedding(couple=f"Pair {n}", plan="premium")
    make_wedding(couple="Other")
    first = staff_client.get(URL, {"plan": "premium"})
    assert len(slugs(first)) == 25
    assert "plan=premium&amp;page=2" in first.content.decode()
    assert len(slugs(staff_client.get(URL, {"plan": "premium", "page": 2}))) == 5


def test_the_query_count_does_not_grow_with_the_rows_shown(staff_client, providers):
    for _ in range(5):
        wedding_with_copies(providers, 2)
    few = queries_for(staff_client, URL)
    for _ in range(45):
        wedding_with_copies(providers, 2)
    fleet_health_refresh()
    assert queries_for(staff_client, URL) == few
    assert queries_for(staff_client, URL + "?status=at-risk&q=ana") == few


def test_it_filters_by_date_and_sorts_by_stored_figures(staff_client, providers):
    import datetime as dt

    small = wedding_with_copies(providers, 3, date=dt.date(2024, 5, 1))
    short = wedding_with_copies(providers, 1, date=dt.date(2025, 7, 1))
    big = make_wedding(date=dt.date(2026, 2, 1))
    for _ in range(4):
        asset = make_asset(big, size=10_000)
        for p in providers[:2]:
            make_replica(asset, p)
    fleet_health_refresh()
    assert slugs(staff_client.get(URL)) == [big.slug, short.slug, small.slug]  # newest first
    assert slugs(staff_client.get(URL, {"sort": "oldest"})) == [small.slug, short.slug, big.slug]
    assert slugs(staff_client.get(URL, {"sort": "bytes"})) == [big.slug, short.slug, small.slug]
    assert slugs(staff_client.get(URL, {"sort": "copies"})) == [short.slug, big.slug, small.slug]
    assert slugs(staff_client.get(URL, {"sort": "risk"}))[0] == big.slug
    assert slugs(staff_client.get(URL, {"since": "2025-01-01", "until": "2025-12-31"})) == [short.slug]
    assert slugs(staff_client.get(URL, {"since": "not-a-date"})) == [big.slug, short.slug, small.slug]
