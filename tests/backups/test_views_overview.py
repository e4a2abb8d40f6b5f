import pytest
from django.urls import reverse

from backups.models import BackupJob, Wedding
from backups.snapshots import fleet_health_refresh
from providers.models import Provider
from tests.factories import make_asset, make_provider, make_wedding
from tests.views import assert_login_redirect, chart, make_replica, queries_for

pytestmark = pytest.mark.django_db
URL = "/"


@pytest.fixture
def us_providers():
    return [make_provider(kind="aws_s3", region="us-east-1"), make_provider(kind="b2", region="us-west-004"),
            make_provider(kind="gcs", region="us-east1")]


def protected_wedding(providers, size=100, **kwargs) -> Wedding:
    wedding = make_wedding(**kwargs)
    asset = make_asset(wedding, size=size)
    for p in providers:
        make_replica(asset, p)
    return wedding


def test_it_redirects_anonymous_users(client):
    assert_login_redirect(client.get(URL), URL)


def test_it_forbids_non_staff(plain_client):
    assert plain_client.get(URL).status_code == 403


def test_it_counts_protected_and_at_risk_weddings_and_bytes(staff_client, us_providers):
    protected_wedding(us_providers, size=1000)
    one_copy = make_wedding()
    make_replica(make_asset(one_copy, size=10), us_providers[0])
    stale = make_wedding()
    asset = make_asset(stale, size=20)
    make_replica(asset, us_providers[0])
    make_replica(asset, us_providers[1])
    make_replica(asset, us_providers[2], sha256="0" * 64)  # holds an older version of the file
    protected_wedding(us_providers, size=40)
    # A copy on a provider that is down protects nobody today: every wedding is now short of copies.
    Provider.objects.filter(pk=us_providers[2].pk).update(status=Provider.Status.DOWN)
    fleet_health_refresh()  # what the periodic job (or the status change's hook) does

    response = staff_client.get(URL)
    assert response.status_code == 200
    figure = chart(response, "chart-protection")
    weddings, bytes_ = figure["data"]
    assert weddings["values"] == [0, 4]
    assert bytes_["values"] == [0, 1070]

    Provider.objects.filter(pk=us_providers[2].pk).update(status=Provider.Status.ACTIVE)
    figure = chart(staff_client.get(URL), "chart-protection")
    assert figure["data"][0]["values"] == [0, 4]  # the page shows what was stored, until the next refresh
    fleet_health_refresh()
    figure = chart(staff_client.get(URL), "chart-protection")
    assert figure["data"][0]["values"] == [2, 2]
    assert figure["data"][1]["values"] == [1040, 30]


def test_sql_protection_agrees_with_protection_gap(staff_client, us_providers):
    """The overview's SQL and the engine's protection_gap give the same answer, asset by asset."""
    from backups.planning import asset_gaps
    from backups.queries import asset_health, policy_rules

    eu = make_provider(kind="azure_blob", region="westeurope")
    cases = [
        protected_wedding(us_providers),
        protected_wedding(us_providers[:2]),  # two copies
        protected_wedding([us_providers[0], make_provider(kind="aws_s3", region="us-west-2"),
                           make_provider(kind="aws_s3", region="us-east-2")]),  # three copies, one vendor
        protected_wedding(us_providers, country="FR"),  # EU wedding on US providers
        protected_wedding([eu, make_provider(kind="b2", region="eu-central-003"),
                           make_provider(kind="gcs", region="europe-west1")], country="DE"),
        protected_wedding(us_providers, plan="premium"),
    ]
    flags = dict(asset_health(policy_rules()).values_list("pk", "at_risk"))
    for wedding in cases:
        gaps = asset_gaps(wedding)
        for asset in wedding.assets.all():
            assert flags[asset.pk] == (asset.pk in gaps), (wedding.couple, gaps)
    assert sum(flags.values()) >= 3  # the cases really mix protected and at-risk assets


def test_it_shows_replicas_per_provider_and_status_tiles(staff_client, us_providers):
    protected_wedding(us_providers)
    protected_wedding(us_providers[:1])
    Provider.objects.filter(pk=us_providers[1].pk).update(status=Provider.Status.DEGRADED)
    fleet_health_refresh()
    response = staff_client.get(URL)
    figure = chart(response, "chart-replicas")
    verified = figure["data"][0]
    assert dict(zip(verified["x"], verified["y"], strict=True)) == {
        us_providers[0].name: 2, us_providers[1].name: 1, us_providers[2].name: 1}
    html = response.content.decode()
    assert 'class="tile status-degraded"' in html
    assert reverse("providers:detail", args=[us_providers[1].pk]) in html


def test_it_shows_running_jobs_with_progress(staff_client):
    job = BackupJob.objects.create(wedding=make_wedding(), kind="backup", status="running", bytes_planned=400,
                                   bytes_done=100)
    BackupJob.objects.create(wedding=make_wedding(), kind="backup", status="succeeded")
    html = staff_client.get(URL).content.decode()
    assert f'data-job-url="/jobs/{job.pk}.json"' in html
    assert 'aria-valuenow="25"' in html
    assert html.count('class="progress"') == 1


def test_the_cost_slot_says_when_no_cost_snapshot_exists_yet(staff_client):
    html = staff_client.get(URL).content.decode()
    assert 'data-stat="cost-missing">not computed yet' in html
    assert 'id="chart-costs"' not in html


def test_the_cost_slot_shows_the_latest_snapshot(staff_client):
    import datetime as dt
    from decimal import Decimal

    from django.utils import timezone

    from costs.models import CostSnapshot

    CostSnapshot.objects.create(current_monthly=Decimal("999"), optimised_monthly=Decimal("1"),
                                taken_at=timezone.now() - dt.timedelta(hours=2))
    CostSnapshot.objects.create(current_monthly=Decimal("120.50"), optimised_monthly=Decimal("80.25"))
    response = staff_client.get(URL)
    html = response.content.decode()
    assert 'data-stat="cost-now">120.50' in html and "40.25" in html
    assert chart(response, "chart-costs")["data"][0]["y"] == [120.5, 80.25]


def test_the_page_says_how_fresh_its_figures_are_and_offers_a_refresh(staff_client, us_providers):
    html = staff_client.get(URL).content.decode()
    assert "never (not computed yet)" in html
    protected_wedding(us_providers)
    fleet_health_refresh()
    html = staff_client.get(URL).content.decode()
    assert "never (not computed yet)" not in html
    assert 'data-stat="refreshed-at" datetime="20' in html
    assert f'action="{reverse("backups:snapshots_refresh")}"' in html


def test_the_query_count_does_not_grow_with_the_fleet(staff_client, us_providers):
    from costs.snapshots import cost_snapshot_take

    for _ in range(5):
        protected_wedding(us_providers)
    fleet_health_refresh()
    cost_snapshot_take()
    few = queries_for(staff_client, URL)
    for _ in range(45):
        protected_wedding(us_providers)
        BackupJob.objects.create(wedding=make_wedding(), kind="backup", status="running")
    fleet_health_refresh()
    cost_snapshot_take()
    assert queries_for(staff_client, URL) == few
    assert few <= 12  # stored figures (+ cost history, recovery-kit reminder, open alerts): no fleet-wide aggregate


def test_plotly_is_served_from_the_installed_package(staff_client, client):
    page = staff_client.get(URL).content.decode()
    assert 'src="/static/plotly/plotly.min.js"' in page
    response = client.get("/static/plotly/plotly.min.js")  # no login needed for a public library (WhiteNoise)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    body = b"".join(response.streaming_content)
    assert b"plotly" in body[:2000] and len(body) > 1_000_000
    assert client.get("/static/plotly/plotly.min.js", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    assert client.get("/static/../settings.py").status_code == 404
    assert client.get("/static/plotly/widgetbundle.js").status_code == 404  # only plotly.min.js is exposed
    assert client.get("/static/console/console.css").status_code == 200
