"""Find a wedding and a file by name from the top-bar search box, in a real browser."""

import datetime as dt

import pytest

from tests.factories import make_asset, make_wedding

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]
PASSWORD = "browser-test-Password-3"


@pytest.fixture
def fleet(django_user_model):
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    wanted = make_wedding(couple="Marisol Johnson & Theo Park", city="Lisbon", date=dt.date(2025, 6, 14))
    other = make_wedding(couple="Ana & Ben", city="Porto", date=dt.date(2025, 9, 1))
    for n in range(3):
        make_asset(wanted, relative_path=f"ceremony/IMG_{n:04d}.jpg")
    make_asset(other, relative_path="video/first-dance.mp4", kind="video", content_type="video/mp4")
    make_asset(other, relative_path="video/speeches.mp4", kind="video", content_type="video/mp4")
    return wanted, other


def search_from_the_top_bar(page, text: str) -> None:
    page.fill("[data-search=topbar]", text)
    page.press("[data-search=topbar]", "Enter")
    page.wait_for_selector("[data-results=files]")


def test_finding_a_wedding_and_a_file_by_name(page, shoot, fleet):
    wanted, other = fleet
    page.goto("/providers/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-search=topbar]")

    search_from_the_top_bar(page, "johnson")
    weddings = page.locator("[data-results=weddings] tbody tr")
    assert weddings.count() == 1 and "Marisol Johnson & Theo Park" in weddings.inner_text()
    shoot("search-wedding")
    page.click("[data-results=weddings] a:has-text('Marisol Johnson')")
    page.wait_for_url(f"**/weddings/{wanted.slug}/")

    search_from_the_top_bar(page, "first dance")
    files = page.locator("[data-results=files] tbody tr")
    assert files.count() == 1 and "video/first-dance.mp4" in files.inner_text() and "Ana & Ben" in files.inner_text()
    shoot("search-file")
    page.click("[data-results=files] a:has-text('video/first-dance.mp4')")
    page.wait_for_url(f"**/weddings/{other.slug}/")
