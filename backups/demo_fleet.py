"""The demo fleet `make run` loads: EU and US weddings over three years, made of small real files.

Each wedding is a folder of generated files that ingest reads like any other: JPEGs (Pillow, with EXIF
capture times and camera models, from 1.7 to 12 megapixels), raw-like files (.cr2/.nef: a TIFF header
and noise), video-like files (.mp4 with an ftyp box) and PDFs. Folders and weddings are found again by
their folder, so a second load adds nothing; only the wedding-day-critical one follows the calendar.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone
from django.utils.text import slugify

from .ingest import ImportReport, wedding_import, wedding_rescan
from .models import Plan, Wedding

CRITICAL_IN_DAYS = 3
SPAN_DAYS = 3 * 365
KB = 1024
# (couple, country, city): the first is the wedding-day-critical one.
COUPLES = [
    ("Zoë & Sam", "FR", "Lyon"), ("Ana & Ben", "US", "Austin"), ("Chloé & Hugo", "FR", "Bordeaux"),
    ("Maya & Leo", "US", "Portland"), ("Lena & Jonas", "DE", "Munich"), ("Priya & Dev", "US", "Chicago"),
    ("Giulia & Marco", "IT", "Florence"), ("Emma & Noah", "US", "Denver"), ("Sofia & Mateo", "ES", "Seville"),
    ("Olivia & Liam", "US", "Boston"), ("Fleur & Daan", "NL", "Utrecht"), ("Ava & Ethan", "US", "Savannah"),
    ("Inès & Tom", "BE", "Ghent"), ("Mia & Lucas", "US", "San Diego"), ("Hanna & Felix", "AT", "Salzburg"),
    ("Grace & Owen", "US", "Nashville"), ("Marta & Piotr", "PL", "Kraków"), ("Ella & Jack", "US", "Seattle"),
    ("Aoife & Cian", "IE", "Galway"), ("Nora & Eli", "US", "Santa Fe"), ("Clara & Paul", "DE", "Hamburg"),
    ("Lily & James", "US", "Charleston"), ("Beatriz & João", "PT", "Porto"), ("Zoe & Caleb", "US", "Asheville"),
    ("Elsa & Oskar", "SE", "Gothenburg"), ("Ruby & Miles", "US", "Sedona"), ("Léa & Arthur", "FR", "Annecy"),
    ("Harper & Wyatt", "US", "Bozeman"), ("Anouk & Lars", "NL", "Haarlem"), ("Stella & Max", "US", "Napa"),
    ("Alba & Pau", "ES", "Girona"), ("Ivy & Theo", "US", "Burlington"),
]
PLANS = [Plan.STANDARD, Plan.STANDARD, Plan.PREMIUM, Plan.COST_SAVER]
CAMERAS = [("Canon", "EOS R5", "cr2"), ("Nikon", "Z 6II", "nef"), ("Canon", "EOS R6", "cr2"), ("Nikon", "D850", "nef")]
# (width, height, quality, noise): about 150 to 330 kB each as JPEG; the last is 12 megapixels ("high resolution").
PHOTO_SIZES = [(1600, 1067, 80, 0.12), (2400, 1600, 60, 0.08), (3000, 2000, 50, 0.05), (4032, 3024, 35, 0.03)]
SCENES = ["getting-ready", "ceremony", "portraits", "reception"]


@dataclass(frozen=True)
class DemoWeddingSpec:
    index: int
    couple: str
    country: str
    city: str
    days_ago: int  # negative: still to come
    plan: str
    requires_ml_analysis: bool

    @property
    def folder_name(self) -> str:
        return f"{self.index:02d}-{slugify(self.couple)}"

    @property
    def critical(self) -> bool:
        return self.index == 0


def demo_fleet_specs(*, count: int = 30, seed: int = 2026) -> list[DemoWeddingSpec]:
    """`count` weddings (at most len(COUPLES)): one in a few days, the others spread over three years."""
    rng = random.Random(seed)
    specs = []
    for i, (couple, country, city) in enumerate(COUPLES[:count]):
        spread = 12 + (SPAN_DAYS - 12) * (i - 1) // max(count - 2, 1) + rng.randint(0, 9)
        days_ago = -CRITICAL_IN_DAYS if i == 0 else spread
        plan = Plan.PREMIUM if i == 0 else rng.choice(PLANS)
        specs.append(DemoWeddingSpec(i, couple, country, city, days_ago, plan, i == 0 or rng.random() < 0.2))
    return specs


def _jpeg_pool(rng: random.Random) -> list[tuple[int, int, bytes]]:
    """A few encoded pictures per size; each photo is one of them with its own EXIF (so its own bytes)."""
    from PIL import Image

    pool = []
    for width, height, quality, noise in PHOTO_SIZES:
        for _ in range(3):
            base = Image.frombytes("RGB", (24, 16), rng.randbytes(24 * 16 * 3)).resize((width, height), Image.BICUBIC)
            grain = Image.effect_noise((width // 4, height // 4), 40).convert("RGB").resize((width, height))
            out = io.BytesIO()
            Image.blend(base, grain, noise).save(out, "JPEG", quality=quality)
            pool.append((width, height, out.getvalue()))
    return pool


def _with_exif(jpeg: bytes, *, taken: dt.datetime, make: str, model: str, serial: int) -> bytes:
    """The JPEG with an EXIF segment (camera, capture time) spliced in after the start-of-image marker."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = make, model, f"WedBackup demo {serial}"
    exif.get_ifd(0x8769)[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    payload = exif.tobytes()
    if not payload.startswith(b"Exif\x00\x00"):
        payload = b"Exif\x00\x00" + payload
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _pdf(title: str) -> bytes:
    from PIL import Image, ImageDraw

    page = Image.new("RGB", (595, 842), "white")
    ImageDraw.Draw(page).text((60, 80), title, fill="black")
    out = io.BytesIO()
    page.save(out, "PDF", title=title)
    return out.getvalue()


def demo_folder_fill(*, root: Path, spec: DemoWeddingSpec, date: dt.date, pool: list, files: float = 1.0) -> Path:
    """Write one wedding's folder (photos by scene, raw files, maybe a video, documents) into a temporary folder
    and rename it into place, so a half-written folder is never imported. `files` scales the photo count."""
    rng = random.Random(spec.index)
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted run
    make, model, raw_ext = CAMERAS[spec.index % len(CAMERAS)]
    start = dt.datetime.combine(date, dt.time(10, 0))
    photos = max(2, round(rng.randint(4, 6) * files))
    for n in range(photos):
        # Mostly 1.7-6 megapixels; about one wedding in three has a 12-megapixel frame (high resolution).
        choices = pool if spec.index % 3 == 0 else pool[: 3 * (len(PHOTO_SIZES) - 1)]
        _width, _height, jpeg = choices[rng.randrange(len(choices))]
        taken = start + dt.timedelta(minutes=37 * n + rng.randint(0, 30))
        path = tmp / SCENES[n * len(SCENES) // photos] / f"IMG_{1000 + 7 * n:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_with_exif(jpeg, taken=taken, make=make, model=model, serial=spec.index * 100 + n))
    (tmp / "raw").mkdir(parents=True, exist_ok=True)
    tiff = b"II*\x00\x10\x00\x00\x00CR\x02\x00" if raw_ext == "cr2" else b"MM\x00*\x00\x00\x00\x08"
    for n in range(1 if files < 1 else 2):
        (tmp / "raw" / f"IMG_{1000 + 7 * n:04d}.{raw_ext.upper()}").write_bytes(
            tiff + rng.randbytes(rng.randint(350, 700) * KB))
    if spec.index % 3 == 1:
        (tmp / "video").mkdir(exist_ok=True)
        ftyp = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
        (tmp / "video" / "first-dance.mp4").write_bytes(ftyp + b"\x00\x00\x00\x08free" + rng.randbytes(
            rng.randint(700, 1400) * KB))
    (tmp / "documents").mkdir(exist_ok=True)
    (tmp / "documents" / "contract.pdf").write_bytes(_pdf(f"Photography contract: {spec.couple}, {date:%d %B %Y}"))
    (tmp / "documents" / "timeline.pdf").write_bytes(_pdf(f"Wedding-day timeline: {spec.city}"))
    tmp.rename(root)
    return root


def _date_for(spec: DemoWeddingSpec, today: dt.date) -> dt.date:
    return today - dt.timedelta(days=spec.days_ago)


def demo_fleet_import(*, root: Path, specs: list[DemoWeddingSpec], files: float = 1.0,
                      today: dt.date | None = None) -> list[ImportReport]:
    """Create the folders that are missing and import every wedding; weddings already imported from their folder
    are rescanned (nothing new: nothing changes). The critical wedding is moved back into this week."""
    today = today or timezone.localdate()
    root.mkdir(parents=True, exist_ok=True)
    pool: list = []
    reports = []
    for spec in specs:
        folder = root / spec.folder_name
        existing = Wedding.objects.filter(source_path=str(folder.resolve())).first()
        date = existing.date if existing and not spec.critical else _date_for(spec, today)
        if not folder.exists():
            if not pool:
                pool = _jpeg_pool(random.Random(len(specs)))
            demo_folder_fill(root=folder, spec=spec, date=date, pool=pool, files=files)
        if existing is None:
            reports.append(wedding_import(
                path=folder, couple=spec.couple, date=date, country=spec.country, city=spec.city, plan=spec.plan,
                requires_ml_analysis=spec.requires_ml_analysis))
            continue
        if spec.critical and not existing.wedding_day_critical:
            existing.date = date
            existing.save(update_fields=["date", "updated"])
        reports.append(wedding_rescan(wedding=existing))
    return reports
