"""The deployment files (deploy/) cannot run here (no container engine, no systemd): what can be checked is that
every command they run exists and is the one the tests run, and that the env template names real settings."""

import configparser
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def manage_commands(argv: list[str]) -> list[list[str]]:
    """The manage.py invocations inside one command line (shell `&&` chains included)."""
    if argv[:2] == ["sh", "-c"]:
        return [c for part in argv[2].split("&&") for c in manage_commands(shlex.split(part))]
    if "manage.py" in argv:
        return [argv[argv.index("manage.py") + 1:]]
    return []


def check_command(argv: list[str]) -> None:
    for args in manage_commands(argv):
        assert args[0] in get_commands(), f"no manage.py command {args[0]!r}"
        if args[0] == "rqworker":
            queues = [a for a in args[1:] if not a.startswith("-") and not a.startswith("wedbackup-")]
            assert set(queues) <= set(settings.QUEUE_NAMES), queues
            if set(queues) - {settings.WEDBACKUP_HEALTH_QUEUE}:  # delayed jobs (polls, debounces) need a scheduler
                assert "--with-scheduler" in args, args
        if args[0] == "rqcron":
            assert args[1] == "console.cron"
    for i, word in enumerate(argv):
        if word.endswith("gunicorn") or (word == "sh" and "gunicorn" in " ".join(argv)):
            assert "wedbackup.wsgi:application" in " ".join(argv[i:])


def test_compose_runs_the_web_workers_the_health_worker_and_one_cron():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "health-worker", "cron", "watcher"} <= set(services)
    for service in services.values():
        if "command" in service:
            check_command(service["command"])
    assert services["web"]["healthcheck"]["test"][-1].endswith("/healthz')")
    assert "deploy" not in services["cron"]  # one scheduler: rq's cron does not coordinate replicas
    assert services["watcher"]["command"] == ["python", "manage.py", "watch_sources"]


def test_the_source_watcher_has_a_systemd_unit():
    unit = (DEPLOY / "systemd" / "wedbackup-watcher.service").read_text()
    assert "ExecStart=/opt/wedbackup/.venv/bin/python manage.py watch_sources\n" in unit
    assert "Restart=always" in unit


@pytest.mark.parametrize("unit", sorted((DEPLOY / "systemd").glob("*.service")), ids=lambda p: p.name)
def test_each_systemd_unit_runs_an_existing_command(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(unit.read_text())
    service = parser["Service"]
    assert service["EnvironmentFile"] == "/etc/wedbackup/wedbackup.env"
    for key in ("ExecStartPre", "ExecStart"):
        if key in service:
            for line in service[key].splitlines():
                check_command(shlex.split(line))


def test_the_env_template_names_only_documented_settings_and_every_production_secret():
    documented = set(re.findall(r"\b([A-Z][A-Z0-9_]{3,})=", (ROOT / ".env.example").read_text()))
    template = dict(line.split("=", 1) for line in (DEPLOY / "wedbackup.env").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert set(template) <= documented, set(template) - documented
    assert {"WEDBACKUP_PRODUCTION", "SECRET_KEY", "WEDBACKUP_CREDENTIALS_KEY", "WEDBACKUP_ENCRYPTION_KEY",
            "DATABASE_URL", "REDIS_URL"} <= set(template)
