"""Small JPEG thumbnails of a wedding's photos, made at ingest and kept locally (never on the providers), named by
the photo's sha256: a changed photo gets a new one, identical photos share one. RAW photos through LibRaw (rawpy):
the preview the camera embedded when there is one, else a half-size demosaic; video gets a placeholder."""

from __future__ import annotations

import io
import logging
import os
import tempfile
from pathlib import Path

import rawpy
from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from .models import AssetKind

log = logging.getLogger(__name__)

THUMB_SIZE = (320, 320)
# Decoded at full size only when Pillow cannot shrink while decoding (JPEG can: ``draft``); beyond this, skipped.
MAX_FULL_DECODE_PIXELS = 50_000_000
MAX_JPEG_PIXELS = 400_000_000


def thumbnail_path(*, sha256: str) -> Path:
    return Path(settings.WEDBACKUP_THUMB_DIR) / sha256[:2] / f"{sha256}.jpg"


def thumbnail_exists(*, sha256: str) -> bool:
    return bool(sha256) and thumbnail_path(sha256=sha256).is_file()


def thumbnail_make(*, path: Path, sha256: str, kind: str) -> bool:
    """Make the photo's thumbnail unless it exists; False (never an exception) for what is not a readable photo
    of a sane size: video, and RAW files LibRaw cannot read, get a placeholder in the console instead."""
    if kind not in (AssetKind.PHOTO, AssetKind.RAW_PHOTO):
        return False
    target = thumbnail_path(sha256=sha256)
    if target.is_file():
        return True
    unusable = target.with_suffix(".none")  # remembered, so that a rescan does not try the same bytes again
    if unusable.exists():
        return False
    try:
        if kind == AssetKind.RAW_PHOTO:
            thumb = _raw_thumbnail(path)
        else:
            with Image.open(path) as img:
                thumb = _shrunk(img)
        if thumb is None:
            log.info("no thumbnail for %s: too many pixels to decode here", path)
            _remember_unusable(unusable)
            return False
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, rawpy.LibRawError) as exc:
        log.info("no thumbnail for %s: %s", path, exc)
        if not isinstance(exc, FileNotFoundError | PermissionError):  # the bytes are fine, the file may come back
            _remember_unusable(unusable)
        return False
    tmp = ""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".thumb-", suffix=".jpg")
        with os.fdopen(fd, "wb") as out:
            thumb.save(out, "JPEG", quality=80, optimize=True)
        os.replace(tmp, target)
    except OSError as exc:  # a full or read-only thumbnail disk: never worth a missed backup; tried again next scan
        log.warning("no thumbnail for %s: cannot write %s: %s", path, target, exc.strerror or exc)
        return False
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return True


def _shrunk(img: Image.Image) -> Image.Image | None:
    """The image as an RGB thumbnail, upright; None when it is too large to decode here."""
    pixels = img.size[0] * img.size[1]
    if pixels > (MAX_JPEG_PIXELS if img.format == "JPEG" else MAX_FULL_DECODE_PIXELS):
        return None
    img.draft("RGB", THUMB_SIZE)  # JPEG decodes at 1/2..1/8 scale: a 50 MP photo never sits in memory
    thumb = ImageOps.exif_transpose(img)
    thumb.thumbnail(THUMB_SIZE)
    return thumb.convert("RGB")


def _raw_thumbnail(path: Path) -> Image.Image | None:
    """The camera's embedded preview (a JPEG, or a bitmap) when the RAW has one; otherwise LibRaw's half-size
    demosaic with the camera's white balance (slower: a second or so for a 24 MP file)."""
    with path.open("rb"):
        pass  # a file gone or unreadable raises here as such (LibRaw would say only "I/O error": taken for bad bytes)
    with rawpy.imread(str(path)) as raw:
        try:
            embedded = raw.extract_thumb()
        except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
            embedded = None
        if embedded is not None and embedded.format == rawpy.ThumbFormat.JPEG:
            with Image.open(io.BytesIO(embedded.data)) as img:
                return _shrunk(img)
        if embedded is not None and embedded.format == rawpy.ThumbFormat.BITMAP:
            return _shrunk(Image.fromarray(embedded.data))
        if raw.sizes.raw_width * raw.sizes.raw_height > MAX_FULL_DECODE_PIXELS:
            return None
        return _shrunk(Image.fromarray(raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)))


def _remember_unusable(marker: Path) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
