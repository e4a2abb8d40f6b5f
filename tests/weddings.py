"""Generate a realistic wedding folder for end-to-end tests: real JPEGs with EXIF, raw, video, PDFs, odd names."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image


def jpeg(width: int, height: int, colour: tuple[int, int, int], taken: str) -> bytes:
    img = Image.new("RGB", (width, height), colour)
    # A little noise so the JPEG is not trivially small.
    img.putdata([(colour[0] ^ (i % 7), colour[1], colour[2] ^ (i % 5)) for i in range(width * height)])
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif)
    return buf.getvalue()


def pdf(text: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (200, 280), "white").save(buf, "PDF", title=text)
    return buf.getvalue()


def wedding_folder(root: Path, *, photos: int = 4, video_bytes: int = 6 * 1024 * 1024) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ceremony").mkdir()
    for i in range(photos):
        (root / "ceremony" / f"IMG_{i:04d}.jpg").write_bytes(jpeg(320, 240, (40 * i % 255, 120, 200),
                                                                  f"2026:06:20 1{i % 10}:00:00"))
    (root / "portraits").mkdir()
    (root / "portraits" / "Zoë & Åsa — first look.jpg").write_bytes(jpeg(4300, 3000, (200, 160, 140),
                                                                         "2026:06:20 12:00:00"))
    (root / "raw").mkdir()
    (root / "raw" / "IMG_0001.CR3").write_bytes(b"\x00\x00\x00\x18ftypcrx " + os.urandom(300_000))
    (root / "video").mkdir()
    (root / "video" / "first dance.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(video_bytes))
    (root / "documents").mkdir()
    (root / "documents" / "contract.pdf").write_bytes(pdf("contract"))
    (root / "documents" / "..notes..txt").write_text("odd but legal name\n")
    (root / "empty.txt").write_bytes(b"")
    return root
