"""Dropbox's content hash (SHA-256 over 4 MiB blocks): computed for what we send, checked on what we read back."""

from __future__ import annotations

import io
from typing import Any

import requests
import urllib3
from dropbox.content_hash import DropboxContentHasher

from .base import IntegrityError, TransientError


def content_hash(data: bytes) -> str:
    hasher = DropboxContentHasher()
    hasher.update(data)
    return hasher.hexdigest()


class VerifiedDownload(io.RawIOBase):
    """The response body, checked against Dropbox's content_hash when it ends."""

    def __init__(self, resp: requests.Response, expected: str, key: str):
        self._resp, self._expected, self._key = resp, expected, key
        self._hasher: DropboxContentHasher | None = DropboxContentHasher()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._resp.raw.read(len(buffer), decode_content=True)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise TransientError(f"Dropbox download of {self._key} broke off: {type(exc).__name__}") from exc
        if data:
            if self._hasher is not None:
                self._hasher.update(data)
            buffer[: len(data)] = data
            return len(data)
        if self._hasher is not None:
            actual, self._hasher = self._hasher.hexdigest(), None
            if actual != self._expected:
                raise IntegrityError(f"Dropbox download of {self._key} does not match its content_hash")
        return 0

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
        super().close()
