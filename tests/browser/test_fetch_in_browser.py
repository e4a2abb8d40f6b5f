"""One file from the wedding page in a real browser: its sha256 matches the catalogue, also once the preferred
copy's folder is gone (the next copy serves it)."""

import hashlib
import shutil
from pathlib import Path

import pytest

from backups.models import Asset, AuditEvent
from tests.browser.weddings import log_in, nas_wedding_backed_up

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def photo(tmp_path, run_workers, django_user_model):
    wedding = nas_wedding_backed_up(tmp_path=tmp_path, run_workers=run_workers, user_model=django_user_model,
                                    photos={"IMG_0001.jpg": (200, 120, 90)})
    return Asset.objects.get(wedding=wedding)


def download_sha256(page, asset) -> str:
    page.goto(f"/weddings/{asset.wedding.slug}/")
    with page.expect_download() as info:
        page.locator(f'[data-download="{asset.relative_path}"]').first.click()
    download = info.value
    assert download.suggested_filename == "IMG_0001.jpg"
    return hashlib.sha256(Path(download.path()).read_bytes()).hexdigest()


def test_one_photo_downloads_from_the_wedding_page_with_its_catalogue_sha256(page, shoot, photo, tmp_path):
    log_in(page)
    assert download_sha256(page, photo) == photo.sha256
    shoot("wedding-download")

    shutil.rmtree(tmp_path / "nas-0")  # the preferred copy's place is gone: the next copy serves the file
    assert download_sha256(page, photo) == photo.sha256
    served = [e.details["provider"] for e in AuditEvent.objects.filter(action="asset.download").order_by("pk")]
    assert served == ["nas-0", "nas-1"]


def test_the_wedding_page_opens_with_the_photo_grid_and_thumbnails(page, shoot, photo):
    log_in(page)
    page.goto(f"/weddings/{photo.wedding.slug}/")
    tile = page.locator('[data-tile="ceremony/IMG_0001.jpg"] img')
    tile.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=tile.element_handle())
    assert tile.evaluate("img => img.naturalWidth") == 320
    assert page.locator('[data-tile="ceremony/IMG_0001.jpg"] [data-badge="protected"]').inner_text() == \
        "3 copies verified"
    shoot("wedding-grid")
    page.click("text=every copy, and why it is where it is")
    assert page.url.endswith("#replicas")
