import hashlib
import io
import os

import pytest

from backups import encryption
from providers.backends.base import IntegrityError


def roundtrip(data: bytes, key: bytes) -> bytes:
    sha = hashlib.sha256(data).hexdigest()
    stored = b""
    reader = encryption.EncryptingReader(io.BytesIO(data), key, sha)
    while chunk := reader.read(7777):
        stored += chunk
    assert len(stored) == len(data) + encryption.OVERHEAD
    assert hashlib.sha256(stored).hexdigest() == encryption.stored_sha256(io.BytesIO(data), key, sha)
    return stored


@pytest.mark.parametrize("size", [0, 1, 16, 1024 * 1024 + 3])
def test_it_round_trips_any_size(size):
    key, data = os.urandom(32), os.urandom(size)
    stored = roundtrip(data, key)
    assert b"".join(encryption.decrypt_chunks(io.BytesIO(stored), key)) == data


def test_a_flipped_byte_or_a_wrong_key_fails_authentication():
    key, data = os.urandom(32), b"the first dance" * 1000
    stored = bytearray(roundtrip(data, key))
    with pytest.raises(IntegrityError, match="authentication"):
        b"".join(encryption.decrypt_chunks(io.BytesIO(bytes(stored)), os.urandom(32)))
    stored[100] ^= 1
    with pytest.raises(IntegrityError, match="authentication"):
        b"".join(encryption.decrypt_chunks(io.BytesIO(bytes(stored)), key))


def test_a_truncated_object_is_refused():
    key = os.urandom(32)
    stored = roundtrip(b"vows", key)
    with pytest.raises(IntegrityError):
        b"".join(encryption.decrypt_chunks(io.BytesIO(stored[:-20]), key))


def test_the_data_key_is_stored_wrapped_and_unwraps_only_with_the_master_key(settings):
    key, wrapped = encryption.data_key_new()
    assert key not in wrapped.encode() and encryption.data_key_unwrap(wrapped) == key
    settings.ENCRYPTION_MASTER_KEY = "B" * 43 + "="
    with pytest.raises(IntegrityError):
        encryption.data_key_unwrap(wrapped)
