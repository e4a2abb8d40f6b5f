import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wedbackup.env import ConfigError, env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]


def load_settings(tmp_path, **env) -> dict:
    """Import the settings module in a fresh interpreter with exactly this environment."""
    code = (
        "import json, wedbackup.settings as s;"
        "print(json.dumps({'db': s.DATABASES['default'], 'redis': s.REDIS_URL,"
        " 'queues': s.RQ_QUEUES, 'debug': s.DEBUG}, default=str))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG")}
    clean.update({"WEDBACKUP_VAR_DIR": str(tmp_path)}, **env)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)


def test_database_url_selects_postgresql(tmp_path):
    s = load_settings(tmp_path, DATABASE_URL="postgres://alice:pw@db.example:6543/wed")
    assert s["db"]["ENGINE"] == "django.db.backends.postgresql"
    assert (s["db"]["HOST"], s["db"]["PORT"], s["db"]["NAME"], s["db"]["USER"]) == ("db.example", 6543, "wed", "alice")


def test_the_default_database_is_sqlite_under_var(tmp_path):
    s = load_settings(tmp_path)
    assert s["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert s["db"]["NAME"].startswith(str(tmp_path))


def test_redis_url_feeds_every_queue(tmp_path):
    s = load_settings(tmp_path, REDIS_URL="redis://cache.example:6380/3")
    assert s["redis"] == "redis://cache.example:6380/3"
    assert list(s["queues"]) == ["critical", "default", "bulk", "health"]
    assert {q["URL"] for q in s["queues"].values()} == {"redis://cache.example:6380/3"}


def test_production_refuses_to_start_without_secrets(tmp_path):
    env = {"WEDBACKUP_PRODUCTION": "1", "SECRET_KEY": "", "WEDBACKUP_CREDENTIALS_KEY": ""}
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        load_settings(tmp_path, **env)


def test_local_secrets_are_generated_once_into_var(tmp_path):
    load_settings(tmp_path, SECRET_KEY="", WEDBACKUP_CREDENTIALS_KEY="")
    first = (tmp_path / "secret_key").read_text()
    load_settings(tmp_path, SECRET_KEY="", WEDBACKUP_CREDENTIALS_KEY="")
    assert (tmp_path / "secret_key").read_text() == first
    assert oct((tmp_path / "credentials_key").stat().st_mode & 0o777) == "0o600"


def test_env_helpers_fail_loudly_on_bad_values(monkeypatch):
    monkeypatch.setenv("X_BOOL", "perhaps")
    monkeypatch.setenv("X_INT", "ten")
    with pytest.raises(ConfigError, match="X_BOOL"):
        env_bool("X_BOOL")
    with pytest.raises(ConfigError, match="X_INT"):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_list("X_LIST", []) == ["a", "b", "c"]


def production_env(tmp_path) -> dict:
    from cryptography.fernet import Fernet

    return {"WEDBACKUP_PRODUCTION": "1", "DEBUG": "0", "SECRET_KEY": "s" * 30 + "-Unique-Enough-Secret-Key-0123",
            "WEDBACKUP_CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "WEDBACKUP_ENCRYPTION_KEY": Fernet.generate_key().decode(), "ALLOWED_HOSTS": "backup.example.com",
            "WEDBACKUP_VAR_DIR": str(tmp_path)}


def test_production_settings_pass_the_deploy_checks(tmp_path):
    inherited = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env = {**inherited, **production_env(tmp_path)}
    out = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_production_refuses_debug(tmp_path):
    with pytest.raises(RuntimeError, match="DEBUG must be off"):
        load_settings(tmp_path, **{**production_env(tmp_path), "DEBUG": "1"})
