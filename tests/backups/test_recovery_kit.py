"""The recovery kit: providers and (sealed under a passphrase) their credentials and the master key; loaded on a
fresh install; a wrong passphrase or an edited kit loads nothing; the console reminds staff to make a new one."""

import base64
import os
import stat

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from backups import encryption, recovery_kit
from backups.audit import provider_change_record
from backups.models import AuditEvent
from backups.recovery_kit import KitError, kit_create, kit_load, kit_reminder
from providers.models import Provider
from tests.factories import make_provider

pytestmark = pytest.mark.django_db

PASSPHRASE = "correct horse battery staple"
SECRET = "s3cr3t-value-that-must-not-leak"


@pytest.fixture(autouse=True)
def _quick_kdf(monkeypatch):
    """The real cost (2**17) is for people guessing; these tests derive a key a dozen times."""
    monkeypatch.setattr(recovery_kit, "SCRYPT", {"n": 2**12, "r": 8, "p": 1})


@pytest.fixture
def providers():
    return [
        make_provider(name="s3-main", kind="aws_s3", region="us-east-1", bucket="main", endpoint="http://127.0.0.1:9",
                      credentials={"access_key_id": "AKIAKIT", "secret_access_key": SECRET},
                      options={"object_lock_mode": "GOVERNANCE"}),
        make_provider(name="azure-eu", kind="azure_blob", region="westeurope", bucket="eu",
                      credentials={"account_name": "acct", "account_key": base64.b64encode(b"k" * 32).decode()}),
    ]


def new_install(settings):
    """What a fresh server has: no providers, and a master key of its own."""
    Provider.objects.all().delete()
    settings.ENCRYPTION_MASTER_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_a_kit_brings_back_providers_credentials_and_the_master_key(providers, tmp_path, settings):
    original_key = settings.ENCRYPTION_MASTER_KEY
    kit = tmp_path / "kit.yaml"
    made = kit_create(out=kit, passphrase=PASSPHRASE, by="cli:alice")
    text = kit.read_text()
    assert stat.S_IMODE(kit.stat().st_mode) == 0o600
    assert SECRET not in text and original_key not in text and "AKIAKIT" not in text
    assert [p["name"] for p in yaml.safe_load(text)["providers"]] == ["azure-eu", "s3-main"]
    assert AuditEvent.objects.get(action="recovery_kit.create").details == {
        "providers": ["azure-eu", "s3-main"], "master_key_id": made["master_key_id"]}

    new_install(settings)
    key_file = tmp_path / "var" / "encryption_key"
    loaded = kit_load(path=kit, passphrase=PASSPHRASE, key_file=key_file)
    assert sorted(loaded["created"]) == ["azure-eu", "s3-main"]
    s3 = Provider.objects.get(name="s3-main")
    assert s3.credentials == {"access_key_id": "AKIAKIT", "secret_access_key": SECRET}
    assert (s3.endpoint, s3.bucket, s3.options) == ("http://127.0.0.1:9", "main", {"object_lock_mode": "GOVERNANCE"})
    assert key_file.read_text() == original_key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert encryption.master_key_id(key_file.read_text()) == made["master_key_id"]


def test_a_wrong_passphrase_loads_nothing_and_says_so(providers, tmp_path, settings):
    kit = tmp_path / "kit.yaml"
    kit_create(out=kit, passphrase=PASSPHRASE)
    new_install(settings)
    key_file = tmp_path / "encryption_key"
    with pytest.raises(KitError, match="wrong passphrase"):
        kit_load(path=kit, passphrase="not the passphrase at all", key_file=key_file)
    assert not Provider.objects.exists() and not key_file.exists()


def test_a_kit_whose_endpoint_was_edited_does_not_open(providers, tmp_path, settings):
    """Otherwise an edited kit would hand the credentials to whoever runs the new endpoint."""
    kit = tmp_path / "kit.yaml"
    kit_create(out=kit, passphrase=PASSPHRASE)
    kit.write_text(kit.read_text().replace("http://127.0.0.1:9", "http://127.0.0.1:10"))
    new_install(settings)
    with pytest.raises(KitError, match="altered"):
        kit_load(path=kit, passphrase=PASSPHRASE, key_file=tmp_path / "k")
    assert not Provider.objects.exists()


def test_not_a_kit_and_a_short_passphrase_are_refused(providers, tmp_path):
    (tmp_path / "junk.yaml").write_text("providers: [1, 2")
    with pytest.raises(KitError, match="not a WedBackup recovery kit"):
        kit_load(path=tmp_path / "junk.yaml", passphrase=PASSPHRASE, key_file=None)
    with pytest.raises(KitError, match="at least 12"):
        kit_create(out=tmp_path / "kit.yaml", passphrase="short")
    assert not (tmp_path / "kit.yaml").exists()


def test_the_kit_is_never_written_into_a_watched_folder_provider(tmp_path):
    make_provider(name="carbonite", kind="watched_folder", bucket=str(tmp_path / "carbonite"))
    with pytest.raises(KitError, match="inside provider carbonite"):
        kit_create(out=tmp_path / "carbonite" / "kit.yaml", passphrase=PASSPHRASE)


def test_the_command_writes_and_loads_a_kit(providers, tmp_path, settings, monkeypatch):
    monkeypatch.setenv("KIT_PASSPHRASE", PASSPHRASE)
    kit = tmp_path / "kit.yaml"
    call_command("recovery_kit", "--out", str(kit), "--passphrase-env", "KIT_PASSPHRASE")
    new_install(settings)
    monkeypatch.setenv("KIT_PASSPHRASE", "wrong wrong wrong wrong")
    with pytest.raises(CommandError, match="wrong passphrase"):
        call_command("recovery_kit", "--load", str(kit), "--passphrase-env", "KIT_PASSPHRASE",
                     "--key-file", str(tmp_path / "k"))
    monkeypatch.setenv("KIT_PASSPHRASE", PASSPHRASE)
    call_command("recovery_kit", "--load", str(kit), "--passphrase-env", "KIT_PASSPHRASE",
                 "--key-file", str(tmp_path / "k"))
    assert Provider.objects.count() == 2


def test_a_reminder_until_a_kit_covers_the_current_providers_and_key(providers, tmp_path, settings, staff_client):
    assert kit_reminder() == "No recovery kit has been made yet"
    assert b"No recovery kit has been made yet" in staff_client.get("/").content
    kit_create(out=tmp_path / "kit.yaml", passphrase=PASSPHRASE)
    assert kit_reminder() == ""
    assert b"recovery kit" not in staff_client.get("/").content.lower()
    provider_change_record(provider=providers[0], by="admin", created=False, fields=["credentials"])
    assert kit_reminder() == "Providers changed since the last recovery kit"
    kit_create(out=tmp_path / "kit.yaml", passphrase=PASSPHRASE)
    settings.ENCRYPTION_MASTER_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
    assert kit_reminder() == "The master encryption key changed since the last recovery kit"
