"""`make run`'s SQLite is written by several processes at once: a second writer waits, it never fails."""

import threading
import time

import pytest
from django.db.utils import ConnectionHandler

from wedbackup.env import database_config


@pytest.fixture(autouse=True)
def _own_sqlite_files(django_db_blocker):
    """These connections are to throwaway SQLite files, not the suite's database."""
    with django_db_blocker.unblock():
        yield


def _connection(path):
    handler = ConnectionHandler({"default": database_config(f"sqlite:///{path}")})
    return handler["default"]


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    conn = _connection(tmp_path / "db.sqlite3")
    with conn.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 30_000
    conn.close()


def test_a_second_writer_waits_for_the_first_instead_of_failing(tmp_path):
    path = tmp_path / "db.sqlite3"
    setup = _connection(path)
    with setup.cursor() as cursor:
        cursor.execute("CREATE TABLE t (v INTEGER)")
    setup.close()
    holding, errors, done = threading.Event(), [], []

    def hold_a_write():
        first = _connection(path)  # a connection belongs to the thread that made it
        try:
            with first.cursor() as cursor:
                cursor.execute("BEGIN IMMEDIATE")
                cursor.execute("INSERT INTO t VALUES (1)")
                holding.set()
                time.sleep(1.0)
                cursor.execute("COMMIT")
        finally:
            first.close()

    def write_meanwhile():
        holding.wait(5)
        second = _connection(path)
        try:
            with second.cursor() as cursor:
                cursor.execute("BEGIN IMMEDIATE")
                cursor.execute("INSERT INTO t VALUES (2)")
                cursor.execute("COMMIT")
                done.append(True)
        except Exception as exc:  # "database is locked" without the busy timeout
            errors.append(exc)
        finally:
            second.close()

    threads = [threading.Thread(target=hold_a_write), threading.Thread(target=write_meanwhile)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and done == [True]
    check = _connection(path)
    with check.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY v")
        assert [row[0] for row in cursor.fetchall()] == [1, 2]
    check.close()
