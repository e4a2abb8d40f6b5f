"""The GCS resumable-upload protocol, driven chunk by chunk so we decide when the object is committed.

Why not ``BlobWriter`` / ``google-resumable-media``: we must check the source's sha256 *before* the final
request (the one that commits the object), declare both md5 and crc32c on that request (``X-Goog-Hash``, which
GCS validates), and cancel the session on failure. ``BlobWriter.terminate()`` sends its DELETE to the
initiation URL rather than the session URL, so it cancels nothing; the public google-resumable-media 2.x sends
no ``X-Goog-Hash`` on the final chunk.

Protocol: https://cloud.google.com/storage/docs/performing-resumable-uploads
"""

from __future__ import annotations

import base64
import contextlib
import random
import re
import time
from collections.abc import Callable
from typing import Any

import requests
from google.api_core import exceptions as api_exceptions

CHUNK_MULTIPLE = 256 * 1024
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_RANGE = re.compile(r"bytes=0-(\d+)")


def chunk_size_for(part_size: int) -> int:
    """GCS wants every non-final chunk to be a multiple of 256 KiB."""
    return max(CHUNK_MULTIPLE, part_size // CHUNK_MULTIPLE * CHUNK_MULTIPLE)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class ResumableSession:
    """One upload session. ``send`` each chunk in order; the last call (``final=True``) returns the object."""

    def __init__(self, http: requests.Session, url: str, size: int, *, timeout: Any, attempts: int = 3):
        self.http, self.url, self.size, self.timeout, self.attempts = http, url, size, timeout, attempts
        self.committed = 0  # bytes the server has acknowledged

    def send(self, data: bytes, *, final: bool, hashes: Callable[[], dict[str, bytes]] | None = None) -> dict | None:
        """Send ``data`` (starting at ``self.committed``); resend what the server did not keep.

        ``hashes`` is called only for the final request, after the caller had its last chance to refuse.
        """
        start, end = self.committed, self.committed + len(data)
        headers: dict[str, str] = {}
        if final:
            if end != self.size:
                raise ValueError(f"final chunk ends at {end}, upload size is {self.size}")
            digests = hashes() if hashes else {}
            if digests:
                headers["X-Goog-Hash"] = ",".join(f"{algo}={b64(d)}" for algo, d in digests.items())
        failures = 0
        while True:
            offset = self.committed - start
            body = data[offset:]
            total = str(self.size) if final else "*"
            span = f"{self.committed}-{self.committed + len(body) - 1}" if body else "*"
            try:
                resp = self.http.put(self.url, data=body, timeout=self.timeout,
                                     headers={**headers, "Content-Range": f"bytes {span}/{total}"})
                if resp.status_code in TRANSIENT_STATUS:
                    raise api_exceptions.from_http_response(resp)
            except (requests.ConnectionError, requests.Timeout, api_exceptions.GoogleAPICallError) as exc:
                failures += 1
                if failures >= self.attempts or not _transient(exc):
                    raise
                time.sleep(random.uniform(0, 0.2 * 2**failures))
                resp = self._status()
                if resp is None:
                    continue
            if resp.status_code in (200, 201):
                return resp.json()
            if resp.status_code != 308:
                raise api_exceptions.from_http_response(resp)
            before, self.committed = self.committed, _acknowledged(resp)
            if body and self.committed == before:
                failures += 1  # the server kept none of it: do not loop forever
                if failures >= self.attempts:
                    raise api_exceptions.ServiceUnavailable(f"resumable session made no progress at {before} bytes")
            if not start <= self.committed <= end:
                raise api_exceptions.ServiceUnavailable(
                    f"resumable session acknowledged {self.committed} bytes, expected {start}..{end}")
            if self.committed == end and not final:
                return None

    def _status(self) -> requests.Response | None:
        """Ask how much the server kept (after a failed request). None when that fails too."""
        try:
            resp = self.http.put(self.url, data=b"", timeout=self.timeout, headers={"Content-Range": "bytes */*"})
        except (requests.ConnectionError, requests.Timeout):
            return None
        return None if resp.status_code in TRANSIENT_STATUS else resp

    def cancel(self) -> None:
        """Best effort: a session we abandon must not linger (GCS answers 499 to a cancel)."""
        with contextlib.suppress(requests.RequestException):
            self.http.delete(self.url, timeout=self.timeout)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return exc.code in TRANSIENT_STATUS
    return True


def _acknowledged(resp: requests.Response) -> int:
    match = _RANGE.fullmatch(resp.headers.get("Range", "").strip())
    return int(match.group(1)) + 1 if match else 0
