"""WEDBACKUP_LOG_FORMAT=json: one JSON object per log line (python-json-logger), for log shippers."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = "import logging; logging.getLogger('backups.tasks').warning('backup of %s done', 'ana-ben')"


def run(fmt: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "wedbackup.settings", "WEDBACKUP_LOG_FORMAT": fmt}
    return subprocess.run([sys.executable, "manage.py", "shell", "-c", SNIPPET], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_json_lines_carry_time_level_logger_and_message():
    result = run("json")
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["level"] == "WARNING" and line["logger"] == "backups.tasks"
    assert line["message"] == "backup of ana-ben done" and "time" in line


def test_an_unknown_format_is_refused_at_start():
    result = run("xml")
    assert result.returncode != 0 and "WEDBACKUP_LOG_FORMAT must be text or json" in result.stderr
