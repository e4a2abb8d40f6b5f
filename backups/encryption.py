"""Client-side encryption: AES-256-GCM with a per-wedding data key wrapped by a master key.

A provider never sees plaintext. Stored object = MAGIC | nonce (12) | ciphertext | tag (16).
The nonce is derived from the data key and the file's sha256, so the ciphertext of a file is
deterministic: its sha256 can be computed in a first pass and declared to the provider up front,
exactly like a plaintext upload. The same key and nonce only ever meet the same plaintext, so
determinism reveals no more than "these two stored files are identical".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterator
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from providers.backends.base import IntegrityError

from .models import Wedding

MAGIC = b"WBE1"
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = len(MAGIC) + NONCE_BYTES + TAG_BYTES
ALGORITHM = "AES-256-GCM"
_WRAP_AAD = b"wedbackup data key v1"
CHUNK = 1024 * 1024


def _master_key(encoded: str | None = None) -> bytes:
    key = base64.urlsafe_b64decode(settings.ENCRYPTION_MASTER_KEY if encoded is None else encoded)
    if len(key) != 32:
        raise ValueError("WEDBACKUP_ENCRYPTION_KEY must be 32 bytes, url-safe base64 encoded")
    return key


def master_key_id(encoded: str | None = None) -> str:
    """A fingerprint of the master key (never the key), recorded in manifests; of ``encoded`` when given."""
    return hashlib.sha256(b"wedbackup key id" + _master_key(encoded)).hexdigest()[:16]


def data_key_wrap(data_key: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    return base64.b64encode(nonce + AESGCM(_master_key()).encrypt(nonce, data_key, _WRAP_AAD)).decode()


def data_key_unwrap(wrapped: str) -> bytes:
    raw = base64.b64decode(wrapped)
    try:
        return AESGCM(_master_key()).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _WRAP_AAD)
    except InvalidTag:
        raise IntegrityError("the wedding's data key cannot be unwrapped with this master key") from None


def data_key_new() -> tuple[bytes, str]:
    key = AESGCM.generate_key(bit_length=256)
    return key, data_key_wrap(key)


def _nonce(data_key: bytes, sha256: str) -> bytes:
    return hmac.new(data_key, b"nonce:" + sha256.encode(), hashlib.sha256).digest()[:NONCE_BYTES]


class EncryptingReader:
    """Reads plaintext from ``stream`` and hands out the stored form, chunk by chunk."""

    def __init__(self, stream: IO[bytes], data_key: bytes, plaintext_sha256: str):
        nonce = _nonce(data_key, plaintext_sha256)
        self._enc = Cipher(algorithms.AES(data_key), modes.GCM(nonce)).encryptor()
        self._stream = stream
        self._pending = MAGIC + nonce
        self._done = False

    def read(self, n: int = -1) -> bytes:
        n = CHUNK if n is None or n < 0 else n
        while len(self._pending) < n and not self._done:
            data = self._stream.read(max(n, CHUNK))
            if data:
                self._pending += self._enc.update(data)
            else:
                self._pending += self._enc.finalize() + self._enc.tag
                self._done = True
        out, self._pending = self._pending[:n], self._pending[n:]
        return out


def encrypt_bytes(data: bytes, data_key: bytes, plaintext_sha256: str) -> bytes:
    """The stored form of a small file already in memory: byte for byte what ``EncryptingReader`` streams."""
    nonce = _nonce(data_key, plaintext_sha256)
    return MAGIC + nonce + AESGCM(data_key).encrypt(nonce, data, None)  # ciphertext | tag


def stored_sha256(stream: IO[bytes], data_key: bytes, plaintext_sha256: str) -> str:
    """The sha256 of what will be stored (first pass, nothing kept in memory)."""
    reader, digest = EncryptingReader(stream, data_key, plaintext_sha256), hashlib.sha256()
    while chunk := reader.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def decrypt_chunks(stream: IO[bytes], data_key: bytes) -> Iterator[bytes]:
    """Plaintext chunks of a stored object. The tag is checked at the end: callers must not trust
    (rename into place) what they wrote until the iterator finished without IntegrityError."""
    header = stream.read(len(MAGIC) + NONCE_BYTES)
    if len(header) < len(MAGIC) + NONCE_BYTES or header[: len(MAGIC)] != MAGIC:
        raise IntegrityError("not a WedBackup encrypted object")
    dec = Cipher(algorithms.AES(data_key), modes.GCM(header[len(MAGIC) :])).decryptor()
    tail = b""
    while chunk := stream.read(CHUNK):
        tail += chunk
        if len(tail) > TAG_BYTES:
            yield dec.update(tail[:-TAG_BYTES])
            tail = tail[-TAG_BYTES:]
    if len(tail) != TAG_BYTES:
        raise IntegrityError("encrypted object is truncated")
    try:
        yield dec.finalize_with_tag(tail)
    except InvalidTag:
        raise IntegrityError("encrypted object failed authentication (tampered or wrong key)") from None


def wedding_data_key(wedding) -> bytes:
    """The wedding's data key, created (and stored wrapped) on first use; safe under concurrent workers."""
    if not wedding.wrapped_data_key:
        _, wrapped = data_key_new()
        Wedding.objects.filter(pk=wedding.pk, wrapped_data_key="").update(wrapped_data_key=wrapped)
        wedding.wrapped_data_key = Wedding.objects.values_list("wrapped_data_key", flat=True).get(pk=wedding.pk)
    return data_key_unwrap(wedding.wrapped_data_key)


def plaintext_chunks(stream: IO[bytes], *, encrypted: bool, data_key: bytes | None) -> Iterator[bytes]:
    """What a replica holds, as plaintext: decrypted when it was stored encrypted."""
    if encrypted:
        yield from decrypt_chunks(stream, data_key or b"")
        return
    while chunk := stream.read(CHUNK):
        yield chunk
