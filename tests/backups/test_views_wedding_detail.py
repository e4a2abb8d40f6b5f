import pytest

from backups.models import BackupJob
from costs.models import Optimization
from tests.factories import make_asset, make_provider, make_wedding
from tests.views import assert_login_redirect, chart, make_replica, queries_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def wedding():
    return make_wedding(couple="Gia & Hal")


def url(wedding) -> str:
    return f"/weddings/{wedding.slug}/"


def test_it_redirects_anonymous_users(client, wedding):
    assert_login_redirect(client.get(url(wedding)), url(wedding))


def test_it_forbids_non_staff(plain_client, wedding):
    assert plain_client.get(url(wedding)).status_code == 403


def test_an_unknown_wedding_is_404(staff_client):
    assert staff_client.get("/weddings/nobody-2020-01-01/").status_code == 404


def test_the_distribution_chart_sums_bytes_by_provider_and_class(staff_client, wedding):
    s3 = make_provider(name="s3-main", kind="aws_s3")
    b2 = make_provider(name="b2-main", kind="b2", region="us-west-004")
    for size, s3_class in ((100, "STANDARD"), (200, "STANDARD"), (400, "GLACIER_IR")):
        asset = make_asset(wedding, size=size)
        make_replica(asset, s3, storage_class=s3_class)
        make_replica(asset, b2, storage_class="")
    make_replica(make_asset(wedding, size=999), b2, status="failed", storage_class="")  # not verified: not counted
    figure = chart(staff_client.get(url(wedding)), "chart-distribution")
    traces = {t["name"]: dict(zip(t["x"], t["y"], strict=True)) for t in figure["data"]}
    assert traces == {
        "default class": {"b2-main": 700, "s3-main": 0},
        "GLACIER_IR": {"b2-main": 0, "s3-main": 400},
        "STANDARD": {"b2-main": 0, "s3-main": 300},
    }
    assert figure["layout"]["barmode"] == "stack"


def test_it_explains_why_each_file_is_where_it_is(staff_client, wedding):
    provider = make_provider()
    asset = make_asset(wedding, relative_path="ceremony/kiss.jpg")
    make_replica(asset, provider, reason="premium plan: hot copy for fast restore")
    html = staff_client.get(url(wedding)).content.decode()
    assert "ceremony/kiss.jpg" in html
    assert "premium plan: hot copy for fast restore" in html
    assert "Files below policy" in html  # one copy is below the default policy


def test_it_shows_job_history_buttons_and_proposals(staff_client, wedding):
    BackupJob.objects.create(wedding=wedding, kind="backup", status="partial", error_summary="b2 quota exceeded")
    Optimization.objects.create(wedding=wedding, kind="lifecycle", summary="move RAW files to cold storage",
                                current_monthly=10, new_monthly=4)
    html = staff_client.get(url(wedding)).content.decode()
    assert "b2 quota exceeded" in html
    assert "move RAW files to cold storage" in html
    for action in ("backup", "verify", "restore"):
        assert f'action="/weddings/{wedding.slug}/{action}/"' in html
    assert html.count('name="csrfmiddlewaretoken"') >= 4  # three buttons and log out


def test_the_query_count_does_not_grow_with_the_files(staff_client, wedding):
    providers = [make_provider(), make_provider(kind="b2", region="us-west-004")]

    def add_assets(n):
        for _ in range(n):
            asset = make_asset(wedding)
            for p in providers:
                make_replica(asset, p)
            BackupJob.objects.create(wedding=wedding, kind="backup", status="succeeded")
            Optimization.objects.create(wedding=wedding, kind="lifecycle", summary="x", current_monthly=1,
                                        new_monthly=0)

    add_assets(5)
    few = queries_for(staff_client, url(wedding))
    add_assets(45)
    assert queries_for(staff_client, url(wedding)) == few
    assert few <= 27  # the grid: its count, its page, its rehydrations; the timeline: 9 capped queries; schedules: 1
