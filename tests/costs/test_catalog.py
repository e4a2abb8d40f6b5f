"""The price catalog loads, every figure is sourced and dated, and bad files are rejected loudly."""

import importlib
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from costs.catalog import CLASS_ALIASES, KNOWN_CLASSES, CatalogError, UnknownPrice, default_catalog, load_catalog
from providers.backends import BACKENDS

CATALOG_DIR = Path(__file__).resolve().parents[2] / "costs" / "catalog"


@pytest.fixture
def catalog():
    return load_catalog()


@pytest.fixture
def copy_dir(tmp_path):
    target = tmp_path / "catalog"
    target.mkdir()
    for file in CATALOG_DIR.glob("*.yaml"):
        shutil.copy(file, target / file.name)
    return target


def edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text()
    assert old in text, f"test setup: {old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def test_it_loads_every_known_provider_and_class(catalog):
    assert set(catalog.providers) == set(KNOWN_CLASSES) == set(BACKENDS)
    for kind, provider in catalog.providers.items():
        groups = {group for group, _ in provider.classes}
        assert {cls for _, cls in provider.classes} == set(KNOWN_CLASSES[kind])
        assert len(provider.classes) == len(groups) * len(KNOWN_CLASSES[kind])  # every class in every group
        assert provider.currency == "USD"


def test_every_figure_has_a_source_url_and_an_effective_date(catalog):
    for kind, provider in catalog.providers.items():
        assert isinstance(provider.effective_date, date)
        for price in provider.classes.values():
            assert price.effective_date == provider.effective_date
            figures = price.figures()
            assert figures, (kind, price.storage_class)
            for name in figures:
                source = price.sources.get(name)
                assert source, f"{kind} {price.storage_class!r} {name} has no source"
                assert source.startswith("https://") or (provider.self_hosted and source == "operator")
            assert all(isinstance(v, Decimal) and v >= 0 for v in figures.values())
        for plan in provider.plans.values():
            assert {"seat_month", "min_seats"} <= set(plan.sources)
            assert all(s.startswith("https://") for s in plan.sources.values())


def test_the_version_names_the_newest_date_and_changes_with_any_figure(catalog, copy_dir):
    assert catalog.version.startswith(catalog.effective_date.isoformat() + "-")
    assert catalog.effective_date == max(p.effective_date for p in catalog.providers.values())
    assert load_catalog(copy_dir).version == catalog.version
    edit(copy_dir, "b2.yaml", "storage_gb_month: 0.006", "storage_gb_month: 0.007")
    changed = load_catalog(copy_dir)
    assert changed.version != catalog.version
    assert changed.class_price("b2", None, "").storage_gb_month == Decimal("0.007")


def test_default_catalog_is_cached_and_equal_to_a_fresh_load(catalog):
    assert default_catalog() is default_catalog()
    assert default_catalog().version == catalog.version


def test_regions_resolve_to_their_group_and_unknown_regions_fall_back(catalog):
    s3 = catalog.provider("aws_s3")
    assert s3.region_group("us-east-1") == "us-east"
    assert s3.region_group("EU-CENTRAL-1") == "eu-central"
    assert s3.region_group("ap-south-1") == s3.default_region_group == "us-east"
    assert s3.region_group(None) == "us-east"
    frankfurt = catalog.class_price("aws_s3", "eu-central-1", "STANDARD")
    virginia = catalog.class_price("aws_s3", "us-east-1", "STANDARD")
    assert frankfurt.storage_gb_month > virginia.storage_gb_month
    assert catalog.provider("gcs").region_group("EU") == "eu-multi"
    assert catalog.provider("azure_blob").region_group("westeurope") == "eu-west"


def test_single_class_providers_use_the_empty_class_name(catalog):
    for kind in ("b2", "wasabi", "dropbox", "box", "watched_folder"):
        assert catalog.class_price(kind, None, "").storage_class == ""
        assert catalog.class_price(kind, "anywhere", None).storage_class == ""
    # "" on a multi-class provider means its default (first) class, like Backend.storage_class_for
    assert catalog.class_price("aws_s3", "us-east-1", "").storage_class == "STANDARD"


def test_prices_are_frozen_and_hashable(catalog):
    price = catalog.class_price("aws_s3", "us-east-1", "GLACIER")
    assert {price: 1}[catalog.class_price("aws_s3", "us-east-2", "GLACIER")] == 1
    assert hash(catalog.provider("gcs")) == hash(load_catalog().provider("gcs"))
    with pytest.raises(AttributeError):
        price.storage_gb_month = Decimal(0)
    with pytest.raises(TypeError):
        price.sub_tiers["x"] = Decimal(0)


def test_unknown_classes_and_providers_raise(catalog):
    with pytest.raises(UnknownPrice, match="REDUCED_REDUNDANCY"):
        catalog.class_price("aws_s3", "us-east-1", "REDUCED_REDUNDANCY")
    with pytest.raises(UnknownPrice, match="ftp"):
        catalog.provider("ftp")


def test_restore_time_per_class(catalog):
    hours = {(k, c): catalog.class_price(k, None, c).restore_hours for k, classes in KNOWN_CLASSES.items()
             for c in classes}
    assert hours[("aws_s3", "GLACIER")] == 5  # standard retrieval, 3-5 h
    assert hours[("aws_s3", "DEEP_ARCHIVE")] == 12
    assert hours[("azure_blob", "Archive")] == 15
    assert catalog.class_price("aws_s3", None, "GLACIER").fastest_restore_hours < 1  # expedited
    offline = {("aws_s3", "GLACIER"), ("aws_s3", "DEEP_ARCHIVE"), ("azure_blob", "Archive")}
    assert all(h == 0 for key, h in hours.items() if key not in offline)


def test_per_object_rules_are_in_the_data(catalog):
    for cls in ("STANDARD_IA", "ONEZONE_IA", "GLACIER_IR"):
        assert catalog.class_price("aws_s3", None, cls).min_object_bytes == 128 * 1024
    for cls in ("GLACIER", "DEEP_ARCHIVE"):
        price = catalog.class_price("aws_s3", "eu-central-1", cls)
        assert (price.overhead_class_bytes, price.overhead_standard_bytes) == (32 * 1024, 8 * 1024)
        standard = catalog.class_price("aws_s3", "eu-central-1", "STANDARD")
        assert price.overhead_standard_gb_month == standard.storage_gb_month
    it = catalog.class_price("aws_s3", None, "INTELLIGENT_TIERING")
    assert it.monitoring_min_object_bytes == 128 * 1024 and it.monitoring_per_1000_objects > 0
    assert set(it.sub_tiers) == {"frequent", "infrequent", "archive_instant"} and it.sub_tier_default == "frequent"
    assert catalog.class_price("wasabi", None, "").min_storage_days == 90
    assert catalog.provider("wasabi").account_min_bytes == 10**12
    assert catalog.provider("b2").gb_bytes == 10**9 and catalog.provider("aws_s3").gb_bytes == 2**30


def test_storage_class_names_match_the_backends_that_exist():
    # Backends are written in parallel; every backend module present must agree with the catalog.
    for kind, dotted in BACKENDS.items():
        module_name, _, cls_name = dotted.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        backend_classes = getattr(module, cls_name).storage_classes
        aliases = CLASS_ALIASES.get(kind, {})
        assert tuple(aliases.get(c, c) for c in backend_classes) == KNOWN_CLASSES[kind]


def test_a_backend_alias_prices_like_the_catalog_class(catalog):
    assert catalog.class_price("wasabi", "us-east-1", "STANDARD") == catalog.class_price("wasabi", "us-east-1", "")


BAD_FILES = [
    ("aws_s3.yaml", "us-east: {storage_gb_month: 0.023, ", "us-east: {", "prices.us-east.storage_gb_month"),
    ("aws_s3.yaml", "  ONEZONE_IA:", "  ONEZONE_IA_TYPO:", "ONEZONE_IA_TYPO"),
    ("gcs.yaml", "storage_gb_month: 0.026,", "storage_gb_month: -0.026,", "non-negative"),
    ("gcs.yaml", "storage_gb_month: 0.026,", "storage_gb_month: cheap,", "must be a number"),
    ("b2.yaml", "source: https://www.backblaze.com/cloud-storage/pricing", "source: www.backblaze.com", "source"),
    ("b2.yaml", "write_per_1000: 0,", "write_per_1000: 0, writes_per_1000: 0,", "writes_per_1000"),
    ("wasabi.yaml", "early_deletion: remaining_days", "early_deletion: never", "early_deletion"),
    ("azure_blob.yaml", "regions: [westeurope, northeurope]", "regions: [eastus]", "eastus"),
    ("dropbox.yaml", "default_plan: business", "default_plan: gold", "default_plan"),
    ("box.yaml", "seat_month: 25", "seat_month: 25.5.1", "plans.business_plus.seat_month: must be a number"),
    ("box.yaml", "seat_month: 25", "seat_month: [25", "not valid YAML"),
    ("aws_s3.yaml", "retrieval_default: standard\n    retrieval:\n      standard: {source",
     "retrieval_default: fast\n    retrieval:\n      standard: {source", "retrieval_default"),
    ("aws_s3.yaml", "effective_date: 2025-01-01", "effective_date: last spring", "effective_date"),
]


@pytest.mark.parametrize(("name", "old", "new", "named"), BAD_FILES)
def test_bad_files_are_rejected_with_the_file_and_field_named(copy_dir, name, old, new, named):
    edit(copy_dir, name, old, new)
    with pytest.raises(CatalogError) as err:
        load_catalog(copy_dir)
    assert name in str(err.value)
    assert named in str(err.value)


def test_a_missing_provider_file_is_rejected(copy_dir):
    (copy_dir / "box.yaml").unlink()
    with pytest.raises(CatalogError, match="box"):
        load_catalog(copy_dir)


def test_operator_source_is_only_for_self_hosted_providers(copy_dir):
    edit(copy_dir, "b2.yaml", "source: https://www.backblaze.com/cloud-storage/pricing", "source: operator")
    with pytest.raises(CatalogError, match="b2.yaml: source"):
        load_catalog(copy_dir)
