"""Demo data for `make run`: a staff user and a small wedding folder with real JPEGs, a raw file and a PDF."""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.utils import timezone

from providers.models import Provider

from .ingest import ImportReport, wedding_import

DEMO_USER = "demo"


def demo_user_ensure(var_dir: Path) -> tuple[str, str]:
    """A staff superuser whose password is generated once into var/ (printed by make run)."""
    path = var_dir / "demo_password"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(12))
        os.chmod(path, 0o600)
    password = path.read_text().strip()
    user, _ = get_user_model().objects.get_or_create(username=DEMO_USER, defaults={"email": "demo@example.com"})
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    return DEMO_USER, password


def demo_folder_write(root: Path) -> Path:
    """A few files of each kind, with EXIF capture times, so the console has something real to show."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for i, (colour, size) in enumerate([((220, 180, 160), (1600, 1200)), ((90, 120, 200), (4800, 3200)),
                                        ((240, 230, 200), (1200, 1600))]):
        img = Image.new("RGB", size, colour)
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = f"2026:06:20 1{i}:30:00"
        (root / "ceremony").mkdir(exist_ok=True)
        img.save(root / "ceremony" / f"IMG_{i + 1:04d}.jpg", "JPEG", quality=85, exif=exif)
    (root / "raw").mkdir(exist_ok=True)
    (root / "raw" / "IMG_0002.CR3").write_bytes(b"\x00\x00\x00\x18ftypcrx " + os.urandom(2_000_000))
    (root / "documents").mkdir(exist_ok=True)
    pdf = io.BytesIO()
    Image.new("RGB", (595, 842), "white").save(pdf, "PDF")
    (root / "documents" / "timeline.pdf").write_bytes(pdf.getvalue())
    (root / "documents" / "vows.txt").write_text("I promise to keep three copies of every photo.\n")
    return root


def demo_wedding_ensure(var_dir: Path) -> ImportReport:
    folder = var_dir / "demo-wedding"
    if not folder.exists():
        demo_folder_write(folder)
    return wedding_import(path=folder, couple="Zoë & Sam", date=timezone.localdate() + dt.timedelta(days=3),
                          country="FR", city="Lyon", requires_ml_analysis=True)


def demo_providers_apply(specs: list[dict]) -> list[Provider]:
    """Create or refresh the demo providers (endpoints and keys change each run)."""
    out = []
    for spec in specs:
        values = {k: v for k, v in spec.items() if k != "name"}
        provider, _ = Provider.objects.update_or_create(name=spec["name"], defaults=values)
        out.append(provider)
    return out
