"""Provider credentials are encrypted at rest with Fernet (AES-128-CBC + HMAC), keys from settings."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class CredentialsError(Exception):
    pass


def _fernet() -> MultiFernet:
    # MultiFernet: encrypt with the first key, decrypt with any, so keys can be rotated.
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in settings.CREDENTIALS_KEYS])


def encrypt_json(value: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> dict[str, Any]:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise CredentialsError(
            "credentials cannot be decrypted with the configured WEDBACKUP_CREDENTIALS_KEY"
        ) from None


class EncryptedJSONField(models.TextField):
    """A dict in Python, Fernet ciphertext in the database."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        return decrypt_json(value)

    def to_python(self, value):
        if isinstance(value, dict) or value is None:
            return value or {}
        if value == "":
            return {}
        return decrypt_json(value)

    def get_prep_value(self, value):
        if value in (None, {}, ""):
            return ""
        if isinstance(value, str):  # already ciphertext
            return value
        return encrypt_json(value)

    def value_to_string(self, obj):  # never serialise secrets in dumpdata
        return ""


def mask(credentials: dict[str, Any]) -> dict[str, str]:
    """What a person may see: the field names and a hint, never the secret."""
    masked = {}
    for name, value in credentials.items():
        text = str(value)
        masked[name] = "••••" + text[-2:] if len(text) > 8 and "id" in name.lower() else "••••••"
    return masked
