import json

import pytest
from django.core.management import CommandError, call_command

from providers.models import Provider

pytestmark = pytest.mark.django_db

GOOD = """
providers:
  - name: s3-eu
    kind: aws_s3
    region: eu-west-1
    bucket: wedbackup-eu
    default_storage_class: STANDARD_IA
    credentials_env: {access_key_id: TEST_S3_KEY, secret_access_key: TEST_S3_SECRET}
    capacity_bytes: 1000000000
  - name: nas
    kind: watched_folder
    bucket: /srv/carbonite/wedbackup
    options: {agent_marker: .carbonite-last-backup, agent_max_age_hours: 26}
"""


def test_it_creates_providers_with_credentials_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TEST_S3_KEY", "AKIAEXAMPLE")
    monkeypatch.setenv("TEST_S3_SECRET", "s3cr3t-value")
    path = tmp_path / "providers.yaml"
    path.write_text(GOOD)
    call_command("load_providers", str(path), "--json")
    assert json.loads(capsys.readouterr().out) == {"ok": True, "created": ["s3-eu", "nas"], "updated": []}
    s3 = Provider.objects.get(name="s3-eu")
    assert s3.credentials == {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t-value"}
    assert s3.residency_zone == "EU"
    call_command("load_providers", str(path), "--json")
    assert json.loads(capsys.readouterr().out)["updated"] == ["s3-eu", "nas"]


def test_invalid_entries_are_rejected_with_field_and_reason_and_nothing_is_applied(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_S3_KEY", raising=False)
    path = tmp_path / "providers.yaml"
    path.write_text(GOOD + """
  - name: odd
    kind: ftp
    bucket: x
  - name: gcs
    kind: gcs
    bucket: b
    default_storage_class: GLACIER
    colour: blue
""")
    with pytest.raises(CommandError) as err:
        call_command("load_providers", str(path))
    message = str(err.value)
    assert "providers[0] (s3-eu).credentials_env.access_key_id: environment variable TEST_S3_KEY is not set" in message
    assert "providers[2] (odd).kind: 'ftp' is not one of" in message
    assert "providers[3] (gcs).default_storage_class: gcs has no class 'GLACIER'" in message
    assert "unknown field(s) colour" in message
    assert Provider.objects.count() == 0


def test_bad_yaml_is_reported(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("providers: [unclosed")
    with pytest.raises(CommandError, match="not valid YAML"):
        call_command("load_providers", str(path))
