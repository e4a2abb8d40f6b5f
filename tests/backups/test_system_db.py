"""WedBackup's own database, backed up encrypted on two providers (pg_dump on the test's PostgreSQL, SQLite's backup
API for the local default) and restored from the newest generation that verifies."""

import base64
import datetime as dt
import os
import sqlite3
from pathlib import Path

import django_rq
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from backups.layout import SYSTEM_PREFIX
from backups.models import AuditEvent, Wedding
from backups.systemdb import SystemDbError, database_dump, database_load, system_db_backup, system_db_restore
from backups.tasks import system_db_backup_job
from providers.models import Provider
from tests.factories import make_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def folders(tmp_path):
    return [make_provider(name=f"nas-{i}", kind="watched_folder", region="us-east-1", bucket=str(tmp_path / f"t{i}"),
                          options={"create": True}) for i in range(3)]


def generations(provider: Provider) -> list[str]:
    root = Path(provider.bucket) / SYSTEM_PREFIX
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_dump needs the suite's PostgreSQL")
def test_the_database_is_dumped_encrypted_to_two_providers_and_restored_from_the_newest_that_verifies(
        folders, settings, run_workers):
    Wedding.objects.create(couple="Ana & Ben", date=dt.date(2025, 6, 1), country="US")
    job = django_rq.get_queue("bulk").enqueue(system_db_backup_job)  # what rqcron enqueues daily
    run_workers()
    first = job.return_value()
    assert len(first["stored_on"]) == 2 and first["errors"] == [] and first["engine"] == "postgresql"
    holders = [p for p in folders if generations(p)]
    stored = Path(holders[0].bucket) / SYSTEM_PREFIX / first["generation"] / "database.dump.enc"
    data = stored.read_bytes()
    assert data.startswith(b"WBE1") and b"Ana & Ben" not in data and b"PGDMP" not in data

    Wedding.objects.create(couple="Cleo & Dan", date=dt.date(2025, 7, 1), country="US")
    second = system_db_backup(generations=1)
    assert len(second["pruned"]) == 4  # the first generation's dump and META, on both providers
    assert all(generations(p) == [second["generation"]] for p in holders)
    assert AuditEvent.objects.filter(action="system_db.backup").count() == 2

    newest = Path(holders[0].bucket) / SYSTEM_PREFIX / second["generation"] / "database.dump.enc"
    damaged = bytearray(newest.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    newest.write_bytes(bytes(damaged))
    # A fresh install: an empty catalogue, providers from the kit sealed with a new credentials key.
    Wedding.objects.all().delete()
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    Provider.objects.filter(pk=folders[0].pk).update(credentials={"note": "typed again"})

    call_command("restore_system_db")
    assert sorted(Wedding.objects.values_list("couple", flat=True)) == ["Ana & Ben", "Cleo & Dan"]
    event = AuditEvent.objects.get(action="system_db.restore")
    assert event.details["provider"] == holders[1].name and holders[0].name in event.details["tried"][0]
    assert Provider.objects.get(pk=folders[0].pk).credentials == {"note": "typed again"}

    with pytest.raises(CommandError, match="already holds weddings"):
        call_command("restore_system_db")


def test_nothing_stored_anywhere_is_an_error(db):
    with pytest.raises(SystemDbError, match="stored nowhere"):
        system_db_backup()


def test_nothing_to_restore_says_where_it_looked(folders):
    with pytest.raises(SystemDbError, match="no database dump verifies"):
        system_db_restore()


def test_sqlite_is_dumped_and_loaded_with_its_backup_api(tmp_path):
    source, dump, target = tmp_path / "a.sqlite3", tmp_path / "dump", tmp_path / "b.sqlite3"
    with sqlite3.connect(source) as db:
        db.execute("create table wedding (couple text)")
        db.execute("insert into wedding values ('Ana & Ben')")
    database_dump(db={"NAME": str(source)}, vendor="sqlite", to=dump)
    with sqlite3.connect(target) as db:
        db.execute("create table wedding (couple text)")
        db.execute("insert into wedding values ('stale')")
    database_load(db={"NAME": str(target)}, vendor="sqlite", dump=dump)
    with sqlite3.connect(target) as db:
        assert db.execute("select couple from wedding").fetchall() == [("Ana & Ben",)]


def test_a_wrong_master_key_never_restores(folders, settings):
    system_db_backup()
    settings.ENCRYPTION_MASTER_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
    Wedding.objects.all().delete()
    with pytest.raises(CommandError, match="no database dump verifies"):
        call_command("restore_system_db")
