"""The wedding page in a real browser: its timeline, a selection of photos downloaded as one zip (each sha256 as
catalogued), and a file only in Deep Archive (moto's server) rehydrated as a job whose state the grid shows, then
downloaded."""

import hashlib
import io
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
from django.core import mail

from backups.models import Asset, AuditEvent, Rehydration
from providers.backends import backend_for
from providers.models import Provider
from tests.browser.weddings import log_in, nas_wedding_backed_up
from tests.views import make_replica

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]
VIDEO = b"the first dance, from the balcony camera" * 2000


@pytest.fixture
def wedding(tmp_path, run_workers, django_user_model):
    return nas_wedding_backed_up(tmp_path=tmp_path, run_workers=run_workers, user_model=django_user_model,
                                 photos={f"IMG_000{i}.jpg": colour for i, colour in
                                         enumerate([(200, 120, 90), (90, 160, 210), (120, 200, 100)])})


def test_the_timeline_tells_what_happened_newest_first(page, shoot, wedding):
    log_in(page)
    page.goto(f"/weddings/{wedding.slug}/")
    timeline = page.locator("[data-timeline]")
    timeline.scroll_into_view_if_needed()
    kinds = timeline.locator("li").evaluate_all("items => items.map(li => li.dataset.event)")
    assert kinds == ["backup", "import"]  # the backup job, then the three files catalogued
    assert "3 files catalogued" in timeline.inner_text()
    assert timeline.locator('[data-event="backup"] .status-succeeded').count() == 1
    assert page.locator('[data-next="scrub"]').count() == 1
    shoot("wedding-timeline")


def test_a_selection_downloads_as_one_zip_with_the_catalogue_sha256s(page, shoot, wedding):
    log_in(page)
    page.goto(f"/weddings/{wedding.slug}/")
    chosen = ["ceremony/IMG_0000.jpg", "ceremony/IMG_0002.jpg"]
    for path in chosen:
        page.check(f'[data-select="{path}"]')
    shoot("wedding-selection")
    with page.expect_download() as info:
        page.click("[data-download-selected]")
    download = info.value
    assert download.suggested_filename == f"{wedding.slug}-2-files.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as zf:
        assert sorted(zf.namelist()) == chosen
        for path in chosen:
            assert hashlib.sha256(zf.read(path)).hexdigest() == \
                Asset.objects.get(wedding=wedding, relative_path=path).sha256
    assert AuditEvent.objects.get(action="asset.download_selection").details["files"] == 2


def test_an_archived_file_is_rehydrated_as_a_job_the_grid_shows_then_downloads(page, shoot, wedding, moto_s3,
                                                                               run_workers):
    bucket = f"wb-{uuid.uuid4().hex[:16]}"
    endpoint = str(moto_s3.extra["endpoint"])
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="moto",
                 aws_secret_access_key="moto").create_bucket(Bucket=bucket)
    glacier = Provider.objects.create(name="glacier", kind="aws_s3", region="us-east-1", bucket=bucket,
                                      endpoint=endpoint, credentials={"access_key_id": "moto",
                                                                      "secret_access_key": "moto"})
    video = Asset.objects.create(wedding=wedding, relative_path="video/first-dance.mp4", kind="video",
                                 size=len(VIDEO), sha256=hashlib.sha256(VIDEO).hexdigest(), content_type="video/mp4")
    replica = make_replica(video, glacier, storage_class="DEEP_ARCHIVE")
    backend_for(glacier).put(replica.object_key, io.BytesIO(VIDEO), len(VIDEO), sha256=video.sha256,
                             content_type="video/mp4", storage_class="DEEP_ARCHIVE")

    log_in(page)
    page.goto(f"/weddings/{wedding.slug}/")
    page.click('[data-download-tile="video/first-dance.mp4"]')
    assert "a rehydration fee applies" in page.inner_text("[data-archived]")
    shoot("asset-archived")
    page.click("text=Request rehydration")
    page.wait_for_url(f"**/weddings/{wedding.slug}/")
    badge = page.locator('[data-tile="video/first-dance.mp4"] [data-rehydration="waiting"]')
    assert badge.inner_text().startswith("rehydrating")
    badge.scroll_into_view_if_needed()
    shoot("wedding-rehydrating")

    run_workers()  # the poll: moto restores at once
    assert Rehydration.objects.get().status == "ready"
    assert mail.outbox[-1].to == ["ops@studio.example"]
    page.reload()
    assert page.locator('[data-tile="video/first-dance.mp4"] [data-rehydration="ready"]').inner_text() == \
        "back from the archive"
    with page.expect_download() as info:
        page.click('[data-download-tile="video/first-dance.mp4"]')
    assert hashlib.sha256(Path(info.value.path()).read_bytes()).hexdigest() == video.sha256
    shoot("wedding-rehydrated")
