"""rebuild_catalog on real watched folders and real workers: the catalogue comes back from the manifests alone, and
bad manifests, disagreeing providers and an unreachable provider are reported, never trusted."""

import datetime as dt
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backups.erasure import wedding_erasure
from backups.ingest import wedding_import
from backups.layout import index_key, manifest_key
from backups.manifest import manifest_seal
from backups.models import Asset, BackupJob, BackupPolicy, Replica, Wedding
from backups.rebuild import catalog_rebuild
from backups.restore import wedding_restore
from backups.tasks import backup_start
from backups.verify import wedding_verify
from providers.models import Provider
from tests.factories import make_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fleet(tmp_path):
    policy = BackupPolicy.default()
    policy.min_distinct_providers = 1  # three folders are one vendor
    policy.plan_overrides = {"premium": {"client_side_encryption": True}}
    policy.save()
    return [make_provider(name=f"folder-{i}", kind="watched_folder", region="us-east-1",
                          bucket=str(tmp_path / f"target-{i}"), options={"create": True}) for i in range(3)]


def source(root: Path, tag: str) -> Path:
    (root / "ceremony").mkdir(parents=True)
    (root / "ceremony" / "IMG 001 é.jpg").write_bytes(b"\xff\xd8\xff" + tag.encode() * 3000)
    (root / "docs").mkdir()
    (root / "docs" / "contract.pdf").write_bytes(b"%PDF-1.4 " + tag.encode())
    (root / "empty.txt").write_bytes(b"")
    return root


def backed_up(tmp_path, run_workers) -> dict[str, Path]:
    folders = {}
    for n, (couple, plan) in enumerate([("Ana & Ben", "standard"), ("Cleo & Dan", "premium")]):
        folders[couple] = source(tmp_path / f"src-{n}", couple)
        wedding = wedding_import(path=folders[couple], couple=couple, date=dt.date(2025, 6, 1 + n), country="US",
                                 plan=plan).wedding
        backup_start(wedding=wedding)
    run_workers()
    assert set(BackupJob.objects.values_list("status", flat=True)) == {BackupJob.Status.SUCCEEDED}
    return {w.slug: folders[w.couple] for w in Wedding.objects.all()}


def catalogue() -> dict:
    return {
        "weddings": sorted(Wedding.objects.values_list("slug", "couple", "date", "plan", "wrapped_data_key")),
        "assets": sorted(Asset.objects.values_list("wedding__slug", "relative_path", "kind", "size", "sha256")),
        "replicas": sorted(Replica.objects.filter(status="verified").values_list(
            "asset__relative_path", "provider__name", "object_key", "size", "sha256", "encrypted")),
    }


def forget_everything() -> None:
    Replica.objects.all().delete()
    BackupJob.objects.all().delete()
    Wedding.objects.all().delete()


def test_the_catalogue_comes_back_from_the_manifests_and_a_second_run_changes_nothing(fleet, tmp_path, run_workers):
    sources = backed_up(tmp_path, run_workers)
    before = catalogue()
    assert any(w[4] for w in before["weddings"])  # one wedding is encrypted
    forget_everything()

    report = catalog_rebuild()
    assert sorted(report.weddings) == sorted(sources)
    assert report.replicas_verified == len(before["replicas"]) == 2 * 3 * 3
    assert report.replicas_unverified == report.skipped == report.disagreements == report.unreachable == []
    assert catalogue() == before
    for slug, folder in sources.items():
        restored = wedding_restore(wedding=Wedding.objects.get(slug=slug), to=tmp_path / "restored" / slug)
        assert restored.failed == {}
        for path in ("ceremony/IMG 001 é.jpg", "docs/contract.pdf", "empty.txt"):
            assert (tmp_path / "restored" / slug / path).read_bytes() == (folder / path).read_bytes()

    ids = sorted(Replica.objects.values_list("pk", "verified_at"))
    again = catalog_rebuild()
    assert again.replicas_verified == report.replicas_verified and again.replicas_unverified == []
    assert sorted(Replica.objects.values_list("pk", "verified_at")) == ids


def test_a_truncated_or_tampered_manifest_is_skipped_and_the_wedding_rebuilt_from_another_copy(fleet, tmp_path,
                                                                                               run_workers):
    sources = backed_up(tmp_path, run_workers)
    slug = sorted(sources)[0]
    wedding = Wedding.objects.get(slug=slug)
    before = catalogue()
    key = Path(manifest_key(wedding))
    truncated = Path(fleet[0].bucket) / key
    truncated.write_bytes(truncated.read_bytes()[:200])
    tampered = Path(fleet[1].bucket) / key
    tampered.write_text(tampered.read_text().replace("Ana & Ben", "Someone Else"))
    forget_everything()

    report = catalog_rebuild()
    assert sorted(report.weddings) == sorted(sources)
    assert [line.split(":")[0] for line in report.skipped] == ["folder-0", "folder-1"]
    assert "truncated" in report.skipped[0] and "checksum" in report.skipped[1]
    # folder-2's manifest names the copies on folder-0 and folder-1: a HEAD confirmed each of them
    assert report.replicas_unverified == []
    assert catalogue() == before
    assert Wedding.objects.get(slug=slug).couple == "Ana & Ben"


def test_providers_that_disagree_the_newest_manifest_wins_and_the_difference_is_reported(fleet, tmp_path,
                                                                                          run_workers):
    sources = backed_up(tmp_path, run_workers)
    slug = sorted(sources)[0]
    path = Path(fleet[0].bucket) / manifest_key(Wedding.objects.get(slug=slug))
    older = json.loads(path.read_text())
    older["wedding"]["couple"] = "Ana & Benjamin"
    older["generated_at"] = "2020-01-01T00:00:00+00:00"
    contract = next(f for f in older["files"] if f["path"] == "docs/contract.pdf")
    contract["sha256"] = "0" * 64  # an older version of the file, as a provider that missed an update holds it
    path.write_bytes(manifest_seal(older))
    forget_everything()

    report = catalog_rebuild()
    assert report.skipped == []
    assert len(report.disagreements) == 2
    assert any("folder-0 differs" in line and "couple" in line for line in report.disagreements)
    assert any("docs/contract.pdf" in line and "different versions" in line for line in report.disagreements)
    assert Wedding.objects.get(slug=slug).couple == "Ana & Ben"
    stale = Replica.objects.get(asset__wedding__slug=slug, asset__relative_path="docs/contract.pdf",
                                provider__name="folder-0")
    assert stale.status == "failed" and "another version" in stale.last_error  # never a restore candidate
    assert Replica.objects.filter(asset__relative_path="docs/contract.pdf", status="verified").count() == 2 * 3 - 1


def test_copies_on_a_provider_not_configured_here_are_reported(fleet, tmp_path, run_workers):
    sources = backed_up(tmp_path, run_workers)
    forget_everything()
    Provider.objects.filter(name="folder-2").delete()
    report = catalog_rebuild()
    assert sorted(report.weddings) == sorted(sources)
    assert report.skipped == [f"{slug}: copies on folder-2 are not recorded: no provider of that name is configured"
                              for slug in sorted(sources)]


def test_an_unreachable_provider_leaves_its_copies_unverified_until_the_rebuild_runs_again(fleet, tmp_path,
                                                                                            run_workers):
    sources = backed_up(tmp_path, run_workers)
    before = catalogue()
    root = Path(fleet[2].bucket)
    root.rename(tmp_path / "away")
    root.write_text("not a folder: the disk is not mounted")
    forget_everything()

    with pytest.raises(CommandError, match="not complete") as failed:
        call_command("rebuild_catalog", stdout=StringIO())
    assert failed.value.returncode == 1  # partial: rebuilt, but not all of it verified
    report = catalog_rebuild()
    assert report.unreachable and report.unreachable[0].startswith("folder-2:")
    unverified = Replica.objects.exclude(status="verified")
    assert set(unverified.values_list("provider__name", flat=True)) == {"folder-2"}
    assert unverified.count() == 2 * 3 and all("unreachable" in r.last_error for r in unverified)
    for slug in sources:  # the other copies are enough to restore every file
        assert wedding_restore(wedding=Wedding.objects.get(slug=slug), to=tmp_path / "r" / slug).failed == {}

    root.unlink()
    (tmp_path / "away").rename(root)
    again = catalog_rebuild(only=["folder-2"])
    assert again.unreachable == [] and again.replicas_unverified == []
    assert catalogue() == before


def test_a_later_verify_completes_the_copies_a_rebuild_could_not_check(fleet, tmp_path, run_workers):
    sources = backed_up(tmp_path, run_workers)
    root = Path(fleet[2].bucket)
    root.rename(tmp_path / "away")
    root.write_text("not a folder: the disk is not mounted")
    forget_everything()
    catalog_rebuild()
    assert Replica.objects.filter(status="failed", provider__name="folder-2").count() == 2 * 3
    root.unlink()
    (tmp_path / "away").rename(root)
    damaged = Replica.objects.filter(provider__name="folder-2").order_by("pk").first()
    Path(root, damaged.object_key).write_bytes(b"not what the manifest says")
    for slug in sources:
        wedding_verify(wedding=Wedding.objects.get(slug=slug))
    completed = Replica.objects.filter(provider__name="folder-2", status="verified")
    assert completed.count() == 2 * 3 - 1 and all(r.verified_at and not r.last_error for r in completed)
    damaged.refresh_from_db()
    assert damaged.status == "failed" and "size" in damaged.last_error  # damage, not "unchecked": repaired next


def test_the_fleet_index_lists_every_wedding_without_listing_every_object(fleet, tmp_path, run_workers):
    sources = backed_up(tmp_path, run_workers)
    for provider in fleet:
        for slug in sources:
            entry = json.loads((Path(provider.bucket) / index_key(slug)).read_text())
            assert entry["slug"] == slug and entry["manifest"] == f"weddings/{slug}/MANIFEST.json"
            assert entry["catalogue_version"] == 2


def test_rebuild_from_names_an_unknown_provider_clearly(fleet):
    with pytest.raises(ValueError, match="no provider named nowhere"):
        catalog_rebuild(only=["nowhere"])
    with pytest.raises(CommandError, match="no provider named nowhere") as failed:
        call_command("rebuild_catalog", "--from", "nowhere")
    assert failed.value.returncode == 2


def test_an_erased_wedding_leaves_nothing_a_rebuild_would_find(fleet, tmp_path, run_workers):
    sources = backed_up(tmp_path, run_workers)
    erased, kept = sorted(sources)
    wedding_erasure(wedding=Wedding.objects.get(slug=erased))
    assert not any((Path(p.bucket) / index_key(erased)).exists() for p in fleet)
    forget_everything()
    report = catalog_rebuild()
    assert report.weddings == [kept] and report.skipped == []


def test_a_rerun_keeps_what_staff_changed_since_and_never_lowers_a_hold(fleet, tmp_path, run_workers):
    backed_up(tmp_path, run_workers)
    forget_everything()
    catalog_rebuild()
    wedding = Wedding.objects.order_by("pk").first()
    assert not wedding.watch_source and not wedding.legal_hold  # as rebuilt: not watched, no hold in the manifest
    Wedding.objects.filter(pk=wedding.pk).update(watch_source=True, legal_hold=True)  # staff, after the rebuild
    catalog_rebuild()
    wedding.refresh_from_db()
    assert wedding.watch_source and wedding.legal_hold


def test_a_copy_whose_checksums_share_nothing_with_the_record_is_not_verified_on_size(fleet, tmp_path, run_workers):
    backed_up(tmp_path, run_workers)
    forget_everything()
    for manifest in Path(fleet[0].bucket).rglob("MANIFEST.json"):  # a record whose checksums no provider reports
        data = json.loads(manifest.read_text())
        for entry in data["files"]:
            entry["checksums"] = {"crc64": "0"}
        manifest.write_bytes(manifest_seal(data))
    report = catalog_rebuild(only=["folder-0"])
    unverified = Replica.objects.filter(provider__name="folder-0").exclude(status="verified")
    assert unverified.exists() and all("size alone proves nothing" in r.last_error for r in unverified)
    assert report.replicas_unverified
