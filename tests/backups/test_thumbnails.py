"""Thumbnails made at ingest and kept locally, served to staff who may view weddings, and the wedding page's photo
grid (paginated, lazy-loaded, a protection badge per file, placeholders for what has no thumbnail)."""

import datetime as dt
import io
import os

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from PIL import Image

from backups import thumbnails
from backups.ingest import wedding_import, wedding_rescan
from backups.models import Asset
from backups.photo_grid import TILES_PER_PAGE
from backups.thumbnails import thumbnail_make, thumbnail_path
from tests.factories import make_asset, make_provider, make_wedding
from tests.views import make_replica
from tests.weddings import jpeg

pytestmark = pytest.mark.django_db


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def imported(tmp_path, settings):
    settings.WEDBACKUP_THUMB_DIR = str(tmp_path / "thumbs")
    src = tmp_path / "wedding"
    for folder in ("ceremony", "raw", "video"):
        (src / folder).mkdir(parents=True)
    (src / "ceremony" / "big.jpg").write_bytes(jpeg(1600, 1200, (200, 100, 50), "2026:06:20 14:00:00"))
    (src / "ceremony" / "flat.png").write_bytes(png(900, 300))
    (src / "ceremony" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(5000))
    (src / "raw" / "IMG_0001.CR3").write_bytes(b"\x00\x00\x00\x18ftypcrx " + os.urandom(3000))
    (src / "video" / "first-dance.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(3000))
    report = wedding_import(path=src, couple="Ana & Ben", date=dt.date(2026, 6, 20), country="US")
    return report


def thumb_of(wedding, rel):
    return thumbnail_path(sha256=Asset.objects.get(wedding=wedding, relative_path=rel).sha256)


def test_ingest_makes_small_jpeg_thumbnails_of_photos_only_and_skips_unreadable_ones(imported, tmp_path):
    wedding = imported.wedding
    assert len(imported.added) == 5 and not imported.problems  # a bad photo is still catalogued and backed up
    for rel in ("ceremony/big.jpg", "ceremony/flat.png"):
        path = thumb_of(wedding, rel)
        assert path.is_relative_to(tmp_path / "thumbs")
        with Image.open(path) as img:
            assert img.format == "JPEG" and max(img.size) <= 320
    with Image.open(thumb_of(wedding, "ceremony/flat.png")) as img:
        assert img.size == (320, 107)  # the aspect ratio is kept
    for rel in ("ceremony/broken.jpg", "raw/IMG_0001.CR3", "video/first-dance.mp4"):
        assert not thumb_of(wedding, rel).exists()


def test_a_rescan_decodes_no_photo_again_but_makes_a_missing_thumbnail(imported, monkeypatch):
    opened = []
    real_open = thumbnails.Image.open
    monkeypatch.setattr(thumbnails.Image, "open", lambda path, *a: opened.append(path) or real_open(path, *a))
    wedding_rescan(wedding=imported.wedding)
    assert opened == []  # the thumbnails exist; a broken photo is remembered; raw and video are not tried
    lost = thumb_of(imported.wedding, "ceremony/flat.png")
    lost.unlink()
    report = wedding_rescan(wedding=imported.wedding)
    assert lost.is_file() and len(report.unchanged) == 5
    assert [p.name for p in opened] == ["flat.png"]


def test_a_huge_image_is_skipped_gracefully_but_a_jpeg_is_decoded_shrunk(tmp_path, monkeypatch, settings):
    settings.WEDBACKUP_THUMB_DIR = str(tmp_path / "thumbs")
    monkeypatch.setattr(thumbnails, "MAX_FULL_DECODE_PIXELS", 100_000)
    (tmp_path / "huge.png").write_bytes(png(1000, 1000))
    (tmp_path / "huge.jpg").write_bytes(jpeg(1000, 1000, (1, 2, 3), "2026:06:20 14:00:00"))
    assert thumbnail_make(path=tmp_path / "huge.png", sha256="a" * 64, kind="photo") is False
    assert thumbnail_make(path=tmp_path / "huge.jpg", sha256="b" * 64, kind="photo") is True
    assert thumbnail_make(path=tmp_path / "missing.jpg", sha256="c" * 64, kind="photo") is False


def client_with(django_user_model, *codenames) -> Client:
    user = django_user_model.objects.create_user(f"u{len(codenames)}", "u@example.com", "pw", is_staff=True)
    if codenames:
        group, _ = Group.objects.get_or_create(name="g-" + "-".join(codenames))
        group.permissions.add(*Permission.objects.filter(codename__in=codenames))
        user.groups.add(group)
    client = Client()
    client.force_login(user)
    return client


def test_the_thumbnail_is_served_to_viewers_only(imported, django_user_model):
    asset = Asset.objects.get(wedding=imported.wedding, relative_path="ceremony/big.jpg")
    url = f"/weddings/{imported.wedding.slug}/files/{asset.pk}/thumbnail.jpg"
    assert Client().get(url)["Location"].startswith("/accounts/login/")
    assert client_with(django_user_model).get(url).status_code == 403
    response = client_with(django_user_model, "view_wedding").get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == thumb_of(imported.wedding, "ceremony/big.jpg").read_bytes()
    raw = Asset.objects.get(wedding=imported.wedding, relative_path="raw/IMG_0001.CR3")
    viewer = client_with(django_user_model, "view_wedding", "view_asset")
    assert viewer.get(f"/weddings/{imported.wedding.slug}/files/{raw.pk}/thumbnail.jpg").status_code == 404
    assert viewer.get(f"/weddings/{make_wedding().slug}/files/{asset.pk}/thumbnail.jpg").status_code == 404


def test_the_wedding_page_opens_with_a_lazy_grid_badges_and_placeholders(imported, staff_client, policy):
    wedding = imported.wedding
    providers = [make_provider(kind="watched_folder", bucket=f"/tmp/nas-{i}") for i in range(3)]
    protected = Asset.objects.get(wedding=wedding, relative_path="ceremony/big.jpg")
    for p in providers:
        make_replica(protected, p)
    html = staff_client.get(f"/weddings/{wedding.slug}/").content.decode()
    assert html.index("data-photo-grid") < html.index('id="replicas"') and 'href="#replicas"' in html
    assert html.count('loading="lazy"') == 2  # the two readable photos; the rest are placeholders
    assert f"/files/{protected.pk}/thumbnail.jpg" in html
    assert html.count("data-placeholder") == 3
    assert html.count('data-badge="protected"') == 1 and html.count('data-badge="below-policy"') == 4
    assert 'data-download-tile="ceremony/big.jpg"' in html


def test_the_grid_is_paginated(staff_client):
    wedding = make_wedding()
    for _ in range(TILES_PER_PAGE + 2):
        make_asset(wedding)
    first = staff_client.get(f"/weddings/{wedding.slug}/").content.decode()
    assert first.count("data-tile=") == TILES_PER_PAGE and "?photos=2#photos" in first
    second = staff_client.get(f"/weddings/{wedding.slug}/?photos=2").content.decode()
    assert second.count("data-tile=") == 2
