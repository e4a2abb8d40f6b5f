"""The backup engine end to end on real watched-folder backends, real Redis and real RQ workers."""

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from backups.ingest import wedding_import
from backups.models import BackupJob, BackupPolicy, Replica
from backups.restore import wedding_restore
from backups.tasks import backup_start
from backups.verify import wedding_verify
from tests.factories import make_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def folders(tmp_path):
    src = tmp_path / "wedding"
    (src / "ceremony").mkdir(parents=True)
    (src / "ceremony" / "IMG 001 é.jpg").write_bytes(b"\xff\xd8\xff" + b"photo" * 1000)
    (src / "docs").mkdir()
    (src / "docs" / "contract.pdf").write_bytes(b"%PDF-1.4 contract")
    (src / "empty.txt").write_bytes(b"")
    return src


@pytest.fixture
def three_folders(tmp_path):
    policy = BackupPolicy.default()
    policy.min_distinct_providers = 1  # three folders are one vendor; the real multi-vendor test is in integrations
    policy.save()
    return [
        make_provider(name=f"folder-{i}", kind="watched_folder", region="us-east-1",
                      bucket=str(tmp_path / f"target-{i}"), options={"create": True})
        for i in range(3)
    ]


def wedding_from(folders):
    return wedding_import(path=folders, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding


def test_a_backup_puts_every_file_on_three_providers_in_the_plain_layout(folders, three_folders, run_workers):
    wedding = wedding_from(folders)
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    assert Replica.objects.filter(status="verified").count() == 3 * 3
    for provider in three_folders:
        root = Path(provider.bucket)
        stored = root / f"weddings/{wedding.slug}/photo/ceremony/IMG 001 é.jpg"
        assert stored.read_bytes() == (folders / "ceremony" / "IMG 001 é.jpg").read_bytes()
        manifest = json.loads((root / f"weddings/{wedding.slug}/MANIFEST.json").read_text())
        assert {f["path"] for f in manifest["files"]} == {"ceremony/IMG 001 é.jpg", "docs/contract.pdf", "empty.txt"}
        for f in manifest["files"]:
            assert hashlib.sha256((root / f["key"]).read_bytes()).hexdigest() == f["sha256"]


def test_a_second_backup_uploads_nothing(folders, three_folders, run_workers):
    wedding = wedding_from(folders)
    backup_start(wedding=wedding)
    run_workers()
    before = {r.pk: (r.attempts, r.verified_at) for r in Replica.objects.all()}
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED
    assert {r.pk: (r.attempts, r.verified_at) for r in Replica.objects.all()} == before
    assert job.bytes_planned == 0


def test_a_changed_file_is_backed_up_again_after_reimport(folders, three_folders, run_workers):
    wedding = wedding_from(folders)
    backup_start(wedding=wedding)
    run_workers()
    (folders / "docs" / "contract.pdf").write_bytes(b"%PDF-1.4 contract, signed")
    report = wedding_import(path=folders, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US")
    assert report.changed == ["docs/contract.pdf"]
    backup_start(wedding=wedding)
    run_workers()
    new_sha = hashlib.sha256(b"%PDF-1.4 contract, signed").hexdigest()
    replicas = Replica.objects.filter(asset__relative_path="docs/contract.pdf")
    assert {r.sha256 for r in replicas} == {new_sha}
    assert all(r.status == "verified" for r in replicas)


def test_a_file_changed_after_import_is_never_stored_as_verified(folders, three_folders, run_workers):
    wedding = wedding_from(folders)
    (folders / "docs" / "contract.pdf").write_bytes(b"%PDF-1.4 tampered after import")
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.PARTIAL
    assert "contract.pdf" in job.error_summary and "changed on disk" in job.error_summary
    assert not Replica.objects.filter(asset__relative_path="docs/contract.pdf", status="verified").exists()
    for provider in three_folders:
        assert not (Path(provider.bucket) / f"weddings/{wedding.slug}/document/docs/contract.pdf").exists()


def test_with_too_few_providers_the_job_says_exactly_why(folders, three_folders, run_workers):
    three_folders[0].status = "down"
    three_folders[0].save()
    wedding = wedding_from(folders)
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.FAILED
    assert "folder-0: down" in job.params["infeasible"]["empty.txt"]


def test_verify_finds_a_corrupted_copy_and_repair_restores_it(folders, three_folders, run_workers):
    wedding = wedding_from(folders)
    backup_start(wedding=wedding)
    run_workers()
    victim = Path(three_folders[1].bucket) / f"weddings/{wedding.slug}/document/docs/contract.pdf"
    victim.write_bytes(b"%PDF-1.4 bit rot!")
    report = wedding_verify(wedding=wedding, deep=True)
    assert len(report.mismatched) == 1 and "folder-1" in report.mismatched[0]
    run_workers()  # the repair job
    assert victim.read_bytes() == b"%PDF-1.4 contract"
    assert wedding_verify(wedding=wedding, deep=True).mismatched == []


def test_verify_deletes_orphans_under_the_wedding_prefix(folders, three_folders, run_workers, settings):
    settings.WEDBACKUP_ORPHAN_MIN_AGE = 0  # this orphan was just made; in service one must be a day old
    wedding = wedding_from(folders)
    backup_start(wedding=wedding)
    run_workers()
    orphan = Path(three_folders[2].bucket) / f"weddings/{wedding.slug}/photo/left-behind.jpg"
    orphan.write_bytes(b"crash between upload and database write")
    report = wedding_verify(wedding=wedding)
    assert report.orphans == [f"folder-2: weddings/{wedding.slug}/photo/left-behind.jpg"]
    assert not orphan.exists()


def test_restore_falls_back_when_the_best_replica_is_corrupt(folders, three_folders, run_workers, tmp_path):
    wedding = wedding_from(folders)
    backup_start(wedding=wedding)
    run_workers()
    (Path(three_folders[0].bucket) / f"weddings/{wedding.slug}/photo/ceremony/IMG 001 é.jpg").write_bytes(b"bad")
    report = wedding_restore(wedding=wedding, to=tmp_path / "restored")
    assert report.failed == {}
    assert report.fallbacks == 1
    for rel in ("ceremony/IMG 001 é.jpg", "docs/contract.pdf", "empty.txt"):
        assert (tmp_path / "restored" / rel).read_bytes() == (folders / rel).read_bytes()


def test_the_commands_drive_the_same_functions(folders, three_folders, run_workers, tmp_path, capsys):
    call_command("import_wedding", str(folders), "--couple", "Zoë & Åsa", "--date", "2025-05-01", "--country", "US",
                 "--json")
    out = json.loads(capsys.readouterr().out)
    assert len(out["added"]) == 3
    wedding_id = str(out["wedding"]["id"])
    call_command("backup_wedding", wedding_id, "--json")
    run_workers()
    capsys.readouterr()
    call_command("verify_wedding", wedding_id, "--deep", "--json")
    verified = json.loads(capsys.readouterr().out)
    assert (verified["checked"], verified["ok"], verified["mismatched"]) == (9, 9, [])
    call_command("restore_wedding", wedding_id, "--to", str(tmp_path / "r"), "--json")
    assert (tmp_path / "r" / "docs" / "contract.pdf").read_bytes() == b"%PDF-1.4 contract"


def test_client_side_encryption_keeps_plaintext_off_the_providers(folders, three_folders, run_workers, tmp_path):
    policy = BackupPolicy.default()
    policy.client_side_encryption = True
    policy.save()
    wedding = wedding_from(folders)
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    plain = (folders / "docs" / "contract.pdf").read_bytes()
    root = Path(three_folders[0].bucket)
    stored = (root / f"weddings/{wedding.slug}/document/docs/contract.pdf").read_bytes()
    assert stored.startswith(b"WBE1") and b"contract" not in stored and len(stored) == len(plain) + 32
    manifest = json.loads((root / f"weddings/{wedding.slug}/MANIFEST.json").read_text())
    assert manifest["encryption"]["algorithm"] == "AES-256-GCM"
    assert manifest["encryption"]["wrapped_data_key"] and all(f["encrypted"] for f in manifest["files"])
    assert wedding_verify(wedding=wedding, deep=True).mismatched == []
    report = wedding_restore(wedding=wedding, to=tmp_path / "restored")
    assert report.failed == {}
    assert (tmp_path / "restored" / "docs" / "contract.pdf").read_bytes() == plain


def test_a_tampered_encrypted_copy_is_caught_and_restore_falls_back(folders, three_folders, run_workers, tmp_path):
    policy = BackupPolicy.default()
    policy.client_side_encryption = True
    policy.save()
    wedding = wedding_from(folders)
    backup_start(wedding=wedding)
    run_workers()
    victim = Path(three_folders[0].bucket) / f"weddings/{wedding.slug}/document/docs/contract.pdf"
    data = bytearray(victim.read_bytes())
    data[20] ^= 0x01
    victim.write_bytes(bytes(data))
    report = wedding_restore(wedding=wedding, to=tmp_path / "restored")
    assert report.failed == {} and report.fallbacks == 1
    restored = (tmp_path / "restored" / "docs" / "contract.pdf").read_bytes()
    assert restored == (folders / "docs/contract.pdf").read_bytes()
    mismatched = wedding_verify(wedding=wedding, deep=True).mismatched
    assert len(mismatched) == 1 and "failed authentication" in mismatched[0]


@pytest.mark.parametrize("command", ["backup_wedding", "verify_wedding"])
def test_the_commands_name_a_missing_wedding(command):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="no wedding with id 999999"):
        call_command(command, "999999")
