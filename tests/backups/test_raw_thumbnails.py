"""RAW photos get real thumbnails through LibRaw (rawpy): the camera's embedded preview when the file has one, else a
half-size demosaic. The DNGs are written here with tifffile (a real DNG: a CFA image with the DNG tags, optionally an
RGB preview in IFD0), since no camera RAW sample can be fetched on this network; bytes LibRaw cannot read keep the
placeholder."""

import datetime as dt
import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from backups.ingest import wedding_import
from backups.models import Asset
from backups.thumbnails import thumbnail_make, thumbnail_path

W, H = 256, 192
DNG_TAGS = [(50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True), (271, "s", 0, "WedBackup", True),
            (272, "s", 0, "Test DNG", True), (50708, "s", 0, "WedBackup Test DNG", True),
            (50721, "2i", 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), True),  # identity ColorMatrix1
            (50778, "H", 1, 21, True), (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True)]  # D65, neutral white balance
CFA_TAGS = [(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),  # RGGB
            (50714, "H", 1, 0, True), (50717, "H", 1, 4095, True)]  # black and white levels (12 bits)


def dng(path, *, preview: bool) -> bytes:
    """A scene red on the left half, blue on the right, as an RGGB Bayer mosaic (and a 64x48 preview of it)."""
    red, green, blue = np.zeros((H, W)), np.full((H, W), 600.0), np.zeros((H, W))
    red[:, : W // 2], blue[:, W // 2:] = 3500, 3500
    cfa = np.zeros((H, W), dtype=np.uint16)
    cfa[0::2, 0::2], cfa[0::2, 1::2] = red[0::2, 0::2], green[0::2, 1::2]
    cfa[1::2, 0::2], cfa[1::2, 1::2] = green[1::2, 0::2], blue[1::2, 1::2]
    with tifffile.TiffWriter(path) as tw:
        if preview:
            small = np.zeros((48, 64, 3), dtype=np.uint8)
            small[:, :32], small[:, 32:] = (250, 20, 20), (20, 20, 250)
            tw.write(small, photometric="rgb", subfiletype=1, subifds=1, extratags=DNG_TAGS)
            tw.write(cfa, photometric=32803, subfiletype=0, extratags=CFA_TAGS)
        else:
            tw.write(cfa, photometric=32803, subfiletype=0, extratags=DNG_TAGS + CFA_TAGS)
    return path.read_bytes()


def left_and_right(path) -> tuple[tuple, tuple, tuple]:
    with Image.open(path) as img:
        assert img.format == "JPEG"
        return img.size, img.getpixel((4, img.height // 2)), img.getpixel((img.width - 5, img.height // 2))


@pytest.fixture(autouse=True)
def thumbs(settings, tmp_path):
    settings.WEDBACKUP_THUMB_DIR = str(tmp_path / "thumbs")


def reddish(rgb) -> bool:
    return rgb[0] > 180 and rgb[2] < 90


def blueish(rgb) -> bool:
    return rgb[2] > 180 and rgb[0] < 90


def test_a_raw_with_an_embedded_preview_gets_that_preview(tmp_path):
    path = tmp_path / "IMG_0001.dng"
    dng(path, preview=True)
    assert thumbnail_make(path=path, sha256="a" * 64, kind="raw_photo")
    size, left, right = left_and_right(thumbnail_path(sha256="a" * 64))
    assert size == (64, 48)  # the preview's size: the raw data was not demosaiced
    assert reddish(left) and blueish(right), (left, right)


def test_a_raw_without_a_preview_is_demosaiced_at_half_size(tmp_path):
    path = tmp_path / "IMG_0002.dng"
    dng(path, preview=False)
    assert thumbnail_make(path=path, sha256="b" * 64, kind="raw_photo")
    size, left, right = left_and_right(thumbnail_path(sha256="b" * 64))
    assert size == (W // 2, H // 2)
    assert reddish(left) and blueish(right), (left, right)


@pytest.mark.django_db
def test_ingest_makes_raw_thumbnails_and_keeps_the_placeholder_for_bytes_libraw_cannot_read(tmp_path):
    src = tmp_path / "wedding" / "raw"
    src.mkdir(parents=True)
    dng(src / "IMG_0003.DNG", preview=True)
    (src / "IMG_0004.CR2").write_bytes(b"II*\x00\x10\x00\x00\x00CR\x02\x00" + os.urandom(4000))  # a CR2 in name only
    wedding = wedding_import(path=src.parent, couple="Ana & Ben", date=dt.date(2026, 6, 20), country="US").wedding
    good, fake = (Asset.objects.get(wedding=wedding, relative_path=f"raw/{name}")
                  for name in ("IMG_0003.DNG", "IMG_0004.CR2"))
    assert good.kind == fake.kind == "raw_photo"
    assert thumbnail_path(sha256=good.sha256).is_file()
    assert not thumbnail_path(sha256=fake.sha256).exists()
    assert thumbnail_path(sha256=fake.sha256).with_suffix(".none").exists()  # not tried again on a rescan


def test_a_raw_gone_before_its_thumbnail_is_not_taken_for_bad_bytes(tmp_path):
    assert not thumbnail_make(path=tmp_path / "gone.dng", sha256="c" * 64, kind="raw_photo")
    assert not thumbnail_path(sha256="c" * 64).with_suffix(".none").exists()
