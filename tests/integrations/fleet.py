"""A reference fleet in the naive baseline, written with bulk_create (no uploads): shared by the cost
acceptance test and bench/costs.py."""

from __future__ import annotations

import datetime as dt
import random
import secrets

from backups.models import Asset, Replica, Wedding
from providers.models import Provider

MB = 1024 * 1024
# (name, kind, region) per zone: the naive baseline puts every copy in the hottest class of these three.
BASELINE = {
    "US": [("aws-us", "aws_s3", "us-east-1", "STANDARD"), ("gcs-us", "gcs", "us-east1", "STANDARD"),
           ("azure-us", "azure_blob", "eastus", "Hot")],
    "EU": [("aws-eu", "aws_s3", "eu-west-1", "STANDARD"), ("gcs-eu", "gcs", "europe-west1", "STANDARD"),
           ("azure-eu", "azure_blob", "westeurope", "Hot")],
}
# Configured but empty: where the optimiser may move copies.
SPARE = [("b2-us", "b2", "us-west-004"), ("b2-eu", "b2", "eu-central-003")]

# kind, content type, extension, (min, max) count per wedding, (min, max) size in bytes
MIX = [
    ("photo", "image/jpeg", "jpg", (40, 90), (2 * MB, 8 * MB)),
    ("raw_photo", "image/x-canon-cr3", "cr3", (4, 14), (25 * MB, 60 * MB)),
    ("video", "video/mp4", "mp4", (0, 2), (1024 * MB, 4096 * MB)),
    ("document", "application/pdf", "pdf", (5, 15), (8 * 1024, 120 * 1024)),
    ("photo", "image/jpeg", "thumb.jpg", (20, 50), (15 * 1024, 100 * 1024)),
]


def fleet_providers() -> dict[str, Provider]:
    rows = {}
    for zone in BASELINE.values():
        for name, kind, region, cls in zone:
            rows[name] = Provider.objects.create(name=name, kind=kind, region=region, bucket=name,
                                                 default_storage_class=cls)
    for name, kind, region in SPARE:
        rows[name] = Provider.objects.create(name=name, kind=kind, region=region, bucket=name)
    return rows


def build_fleet(weddings: int, *, seed: int = 7, today: dt.date | None = None, eu_share: float = 0.2,
                batch: int = 20_000, scale: float = 1.0) -> dict:
    """Weddings spread over three years with the asset mix above; returns counts. `scale` multiplies counts."""
    rng = random.Random(seed)
    today = today or dt.date.today()
    providers = fleet_providers()
    rows = [Wedding(couple=f"Couple {i}", slug=f"fleet-{i}", date=today - dt.timedelta(days=rng.randint(3, 3 * 365)),
                    country="DE" if rng.random() < eu_share else "US") for i in range(weddings)]
    for w in rows:
        w.residency_zone = "EU" if w.country == "DE" else "US"
    Wedding.objects.bulk_create(rows, batch_size=batch)
    counts = {"weddings": weddings, "assets": 0, "replicas": 0}
    assets: list[Asset] = []

    def flush() -> None:
        Asset.objects.bulk_create(assets, batch_size=batch)
        replicas = []
        for a in assets:
            zone = "EU" if a.wedding.residency_zone == "EU" else "US"
            for name, _kind, region, cls in BASELINE[zone]:
                replicas.append(Replica(asset=a, provider=providers[name], object_key=f"weddings/{a.wedding.slug}/"
                                        f"{a.kind}/{a.relative_path}", storage_class=cls, region=region, size=a.size,
                                        sha256=a.sha256, status=Replica.Status.VERIFIED))
        Replica.objects.bulk_create(replicas, batch_size=batch)
        counts["assets"] += len(assets)
        counts["replicas"] += len(replicas)
        assets.clear()

    for w in Wedding.objects.filter(slug__startswith="fleet-"):
        n = 0
        for kind, ctype, ext, (lo, hi), (small, big) in MIX:
            for _ in range(round(rng.randint(lo, hi) * scale)):
                n += 1
                sha = secrets.token_hex(32)
                if kind == "photo" and n % 50 == 0 and assets and assets[-1].wedding_id == w.pk:
                    sha = assets[-1].sha256  # the same photo exported twice
                assets.append(Asset(wedding=w, relative_path=f"{kind}/{n:05d}.{ext}", kind=kind,
                                    size=rng.randint(small, big), sha256=sha, content_type=ctype))
        if len(assets) >= batch:
            flush()
    flush()
    # Some couples still look at their photos: recent downloads keep those weddings warm.
    from costs.models import AccessRecord

    looked_at = [w for w in Wedding.objects.filter(slug__startswith="fleet-").only("pk") if rng.random() < 0.1]
    AccessRecord.objects.bulk_create([AccessRecord(wedding=w, kind="download", bytes=rng.randint(1, 20) * 100 * MB)
                                      for w in looked_at])
    counts["accessed"] = len(looked_at)
    return counts
