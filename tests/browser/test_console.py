"""End to end in a real browser: log in, read the charts, act on a wedding and a provider."""

import datetime as dt

import pytest

from backups.ingest import wedding_import
from backups.models import AuditEvent, BackupPolicy
from backups.tasks import backup_start
from providers.models import Provider
from tests.factories import make_provider
from tests.weddings import wedding_folder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]
PASSWORD = "browser-test-Password-1"


@pytest.fixture
def fleet_with_a_wedding(tmp_path, run_workers, django_user_model):
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    policy = BackupPolicy.default()
    policy.min_distinct_providers = 1
    policy.save()
    for i, region in enumerate(["us-east-1", "us-west-2", "us-east-2"]):
        make_provider(name=f"nas-{i}", kind="watched_folder", region=region, bucket=str(tmp_path / f"nas-{i}"),
                      options={"create": True})
    source = wedding_folder(tmp_path / "source", photos=3, video_bytes=100_000)
    wedding = wedding_import(path=source, couple="Ana & Ben", date=dt.date(2026, 5, 2), country="US").wedding
    backup_start(wedding=wedding)
    run_workers()
    return wedding


def log_in(page):
    page.goto("/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_the_overview_draws_plotly_charts_with_data(page, shoot, fleet_with_a_wedding):
    log_in(page)
    page.wait_for_selector("[data-chart] .main-svg")
    assert page.locator("[data-chart] .main-svg").count() >= 2
    # A bar with the replicas per provider: three providers, each holding every file.
    bars = page.locator("[data-chart] .bars .point")
    assert bars.count() >= 3
    shoot("overview")


def test_a_wedding_page_shows_its_distribution_and_reasons(page, shoot, fleet_with_a_wedding):
    log_in(page)
    page.goto("/weddings/")
    page.click("text=Ana & Ben")
    page.wait_for_selector("[data-chart] .main-svg")
    body = page.inner_text("body")
    assert "nas-0" in body and "ceremony/IMG_0000.jpg" in body
    assert "distinct provider" in body or "cheapest healthy provider" in body  # the stored reasons
    shoot("wedding")


def test_marking_a_provider_down_changes_its_status(page, shoot, fleet_with_a_wedding):
    log_in(page)
    provider = Provider.objects.get(name="nas-1")
    page.goto(f"/providers/{provider.pk}/")
    shoot("provider")
    page.click("text=Mark down")
    page.fill("input[name=reason]", "vendor incident 42")
    page.click("button.danger")
    page.wait_for_selector("text=draining")
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DRAINING
    assert AuditEvent.objects.filter(action__icontains="down", actor_label="ops").exists()
    shoot("provider-drained")


@pytest.mark.parametrize("width", [768, 1024])
def test_every_page_fits_a_tablet_without_sideways_scrolling(page, shoot, fleet_with_a_wedding, width):
    page.set_viewport_size({"width": width, "height": 1024})
    log_in(page)
    provider = Provider.objects.get(name="nas-0")
    for url in ["/", "/weddings/", f"/weddings/{fleet_with_a_wedding.slug}/", "/providers/",
                f"/providers/{provider.pk}/", "/costs/", "/jobs/"]:
        page.goto(url)
        page.wait_for_load_state("load")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{url} is {overflow} px wider than a {width} px screen"
    page.goto("/")
    page.wait_for_selector("[data-chart] .main-svg")
    shoot(f"overview-{width}")
