import pytest
from django.db import connection

from providers.crypto import CredentialsError, decrypt_json, encrypt_json, mask
from providers.models import Provider
from tests.factories import make_provider

pytestmark = pytest.mark.django_db

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_credentials_round_trip_through_the_database():
    provider = make_provider(credentials={"access_key_id": "AKIAEXAMPLE", "secret_access_key": SECRET})
    assert Provider.objects.get(pk=provider.pk).credentials["secret_access_key"] == SECRET


def test_the_database_holds_ciphertext_not_the_secret():
    provider = make_provider(credentials={"secret_access_key": SECRET})
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM providers_provider WHERE id = %s", [provider.pk])
        (stored,) = cursor.fetchone()
    assert SECRET not in stored
    assert "secret_access_key" not in stored
    assert decrypt_json(stored) == {"secret_access_key": SECRET}


def test_ciphertext_from_another_key_is_refused(settings):
    token = encrypt_json({"k": "v"})
    settings.CREDENTIALS_KEYS = ["x" * 43 + "="]
    with pytest.raises(CredentialsError):
        decrypt_json(token)


def test_a_rotated_key_still_decrypts_old_ciphertext(settings):
    from cryptography.fernet import Fernet

    old = settings.CREDENTIALS_KEYS[0]
    token = encrypt_json({"k": "v"})
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode(), old]
    assert decrypt_json(token) == {"k": "v"}


def test_mask_never_shows_a_secret():
    masked = mask({"secret_access_key": SECRET, "access_key_id": "AKIAEXAMPLE1234"})
    assert SECRET not in str(masked)
    assert "AKIAEXAMPLE1234" not in str(masked)


@pytest.mark.parametrize(
    ("region", "zone"),
    [("eu-west-1", "EU"), ("europe-west4", "EU"), ("westeurope", "EU"), ("eu-central-003", "EU"), ("EU", "EU"),
     ("us-east-1", "US"), ("eastus2", "US"), ("us-central1", "US"), ("ap-southeast-2", "none"), ("", "none")],
)
def test_provider_residency_is_derived_from_the_region(region, zone):
    assert make_provider(region=region).residency_zone == zone


def test_a_down_or_draining_provider_accepts_no_work():
    provider = make_provider()
    assert provider.accepts_work
    for status in ("down", "draining"):
        provider.status = status
        assert not provider.accepts_work
    provider.status, provider.enabled = "active", False
    assert not provider.accepts_work
