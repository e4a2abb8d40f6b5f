"""`manage.py optimize_costs` and `manage.py load_catalog`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from backups.models import BackupJob, Replica
from costs.catalog import default_catalog
from costs.models import CatalogVersion, Optimization
from costs.versions import current_catalog
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db
CATALOG_DIR = Path(__file__).resolve().parents[2] / "costs" / "catalog"


@pytest.fixture
def old_wedding(tmp_path):
    """A two-year-old wedding in the naive baseline; its RAW file compresses well."""
    wedding = make_wedding(date=dt.date.today() - dt.timedelta(days=730))
    providers = [make_provider(name="s3", kind="aws_s3", region="us-east-1"),
                 make_provider(name="gcs", kind="gcs", region="us-east1"),
                 make_provider(name="azure", kind="azure_blob", region="eastus")]
    raw = tmp_path / "IMG_0001.CR3"
    raw.write_bytes(b"sensor row 0123456789 " * 20_000)
    assets = [make_asset(wedding, relative_path=f"p/{i}.jpg", size=3_000_000 + i) for i in range(3)]
    assets.append(make_asset(wedding, relative_path="raw/IMG_0001.CR3", kind="raw_photo", size=raw.stat().st_size,
                             sha256=hashlib.sha256(raw.read_bytes()).hexdigest(), source_location=str(raw)))
    for asset in assets:
        for p, cls in zip(providers, ("STANDARD", "STANDARD", "Hot"), strict=True):
            Replica.objects.create(asset=asset, provider=p, storage_class=cls, size=asset.size, sha256=asset.sha256,
                                   status="verified", object_key=f"weddings/{wedding.slug}/{asset.relative_path}")
    return wedding


def run(*args: str) -> str:
    out = StringIO()
    call_command("optimize_costs", *args, stdout=out)
    return out.getvalue()


def test_it_proposes_and_stores_optimisations_as_json(old_wedding):
    data = json.loads(run("--json"))
    kinds = {p["kind"]: p for p in data["proposals"]}
    assert {"lifecycle", "compression"} <= set(kinds)
    assert kinds["lifecycle"]["wedding"] == old_wedding.pk
    assert float(kinds["lifecycle"]["new_monthly"]) < float(kinds["lifecycle"]["current_monthly"])
    assert Optimization.objects.filter(status="proposed").count() == len(data["proposals"])
    compression = Optimization.objects.get(kind="compression")
    assert compression.changes[0]["asset_kind"] == "raw_photo" and compression.changes[0]["ratio"] < 0.1


def test_running_again_supersedes_the_open_proposals(old_wedding):
    run("--no-measure")
    first = set(Optimization.objects.values_list("pk", flat=True))
    text = run("--wedding", str(old_wedding.pk), "--no-measure")
    assert "lifecycle" in text and "proposal(s)" in text
    assert set(Optimization.objects.filter(pk__in=first).values_list("status", flat=True)) == {"superseded"}


def test_apply_enqueues_an_optimise_job_per_appliable_proposal(old_wedding):
    data = json.loads(run("--apply", "--json", "--no-measure"))
    jobs = [p["job"] for p in data["proposals"] if p["job"]]
    assert jobs and BackupJob.objects.filter(pk__in=jobs, kind="optimise", queue="bulk").count() == len(jobs)


def test_an_unknown_wedding_is_an_error():
    with pytest.raises(CommandError, match="no wedding with id 999999"):
        run("--wedding", "999999")


def test_load_catalog_makes_a_newer_catalog_the_one_in_force(tmp_path):
    folder = tmp_path / "prices"
    shutil.copytree(CATALOG_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    text = (folder / "b2.yaml").read_text()
    assert "0.006" in text
    (folder / "b2.yaml").write_text(text.replace("0.006", "0.007", 1))
    out = StringIO()
    call_command("load_catalog", str(folder), stdout=out)
    assert "loaded" in out.getvalue()
    row = CatalogVersion.objects.get()
    assert row.version != default_catalog().version and current_catalog().version == row.version
    assert str(current_catalog().class_price("b2", "us-west-004", "").storage_gb_month) == "0.007"
    out = StringIO()
    call_command("load_catalog", str(folder), stdout=out)
    assert "already loaded" in out.getvalue() and CatalogVersion.objects.count() == 1


def test_load_catalog_refuses_a_broken_file_naming_it(tmp_path):
    folder = tmp_path / "prices"
    shutil.copytree(CATALOG_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (folder / "wasabi.yaml").write_text((folder / "wasabi.yaml").read_text().replace("currency: USD", "currency: EUR"))
    with pytest.raises(CommandError, match="wasabi.yaml"):
        call_command("load_catalog", str(folder))
    assert not CatalogVersion.objects.exists()
