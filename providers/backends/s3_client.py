"""boto3 for the S3 backend (``s3.py``): the process's one session, clients configured for verified puts, and
botocore's errors in the backend contract's vocabulary."""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .base import (
    BackendConfig,
    IntegrityError,
    NeedsRestore,
    ObjectNotFound,
    PermanentError,
    ProviderError,
    TransientError,
)

log = logging.getLogger(__name__)
MIB = 1024 * 1024
NOT_FOUND_CODES = {"NoSuchKey", "NotFound", "404", "NoSuchVersion"}
AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
              "TokenRefreshRequired", "AccountProblem", "AllAccessDisabled", "InvalidSecurity", "403"}
INTEGRITY_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}
TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                   "ServiceUnavailable", "OperationAborted", "RequestLimitExceeded", "TooManyRequests"}
# One boto3 session for the process: it caches the parsed S3 model (~0.15 s per new session). Sessions are
# not thread-safe, so clients are created under a lock; a client (thread-safe) is shared by a backend's threads.
_SESSION_LOCK = threading.Lock()
_SESSION: list[boto3.session.Session] = []
MAX_POOL_CONNECTIONS = 32


def _session() -> boto3.session.Session:
    """The process's session (call with _SESSION_LOCK held)."""
    if not _SESSION:
        _SESSION.append(boto3.session.Session())
    return _SESSION[0]


def warm_session() -> None:
    """Create the session and load the S3 model now: an RQ worker calls this before it forks, so each work
    horse inherits both instead of parsing botocore's JSON again. No network."""
    with _SESSION_LOCK:
        _session().client("s3", region_name="us-east-1", aws_access_key_id="warm", aws_secret_access_key="warm")  # noqa: S106 - no request


class BucketMissing(PermanentError):
    """The configured bucket does not exist."""


def s3_client_new(config: BackendConfig, *, region: str, endpoint_url: str | None) -> Any:
    """A client on the process's session (built under its lock: sessions are not thread-safe)."""
    creds = config.credentials
    style = config.options.get("addressing_style") or ("path" if config.endpoint else "auto")
    with _SESSION_LOCK:
        return _session().client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
            aws_session_token=creds.get("session_token") or None,
            config=Config(
                retries={"total_max_attempts": 2, "mode": "standard"},
                max_pool_connections=MAX_POOL_CONNECTIONS,
                connect_timeout=3,
                read_timeout=30,
                # We send our own SHA-256; botocore's default CRC32 trailers confuse some S3-compatibles.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                # The body's integrity rides on the signed x-amz-checksum-sha256 header, which the server
                # checks; signing the payload too would hash every body a second time (over http botocore
                # otherwise always does).
                s3={"addressing_style": style, "payload_signing_enabled": False},
            ),
        )

def s3_error(exc: Exception, what: str, *, config: BackendConfig, endpoint_url: str | None) -> ProviderError:
    """Translate a botocore exception into the contract's vocabulary (never echoing secrets)."""
    where = f"{config.name}: {what} in bucket {config.bucket!r}"
    log.info("%s: %s: %s", where, type(exc).__name__, exc)  # the server's own words: the log only
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        detail = f"{where} failed: {code}".rstrip()  # the code only: a page never shows the server's reply text
        if code in NOT_FOUND_CODES:
            return ObjectNotFound(f"{where}: no such object")
        if code == "NoSuchBucket":
            return BucketMissing(f"{where}: the bucket does not exist (check the bucket name and region)")
        if code in AUTH_CODES:
            return PermanentError(f"{detail} (check the access key, secret and the bucket policy)")
        if code in ("InvalidObjectState", "ObjectNotInActiveTierError"):
            return NeedsRestore(f"{where}: the object is archived; request a restore first")
        if code in INTEGRITY_CODES:
            return IntegrityError(f"{detail} (the server refused bytes that differ from our checksum)")
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(detail)
        return PermanentError(detail)
    if isinstance(exc, HTTPClientError | BotoConnectionError):  # refused/reset, timeouts, broken streams
        return TransientError(f"{where}: cannot reach {endpoint_url or 'S3'}: {type(exc).__name__}")
    return PermanentError(f"{where} failed: {type(exc).__name__}")
