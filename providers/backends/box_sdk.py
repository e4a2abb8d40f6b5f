"""Box SDK plumbing: credentials, a bounded retry strategy, and errors in the backend vocabulary."""

from __future__ import annotations

import json
from typing import Any

import requests
from box_sdk_gen import (
    BoxAPIError,
    BoxCCGAuth,
    BoxDeveloperTokenAuth,
    BoxRetryStrategy,
    BoxSDKError,
    CCGConfig,
)

from .base import BackendConfig, ObjectNotFound, PermanentError, TransientError

#: Longest Retry-After we sleep through inside one call; beyond it the caller's queue retries later.
MAX_RETRY_AFTER = 10.0


class RetryStrategy(BoxRetryStrategy):
    """The SDK's strategy, bounded: short backoff, capped Retry-After, no refresh of a developer token."""

    def should_retry(self, fetch_options: Any, fetch_response: Any, attempt_number: int) -> bool:
        status = fetch_response.status
        if status == 401 and isinstance(fetch_options.auth, BoxDeveloperTokenAuth):
            return False  # it cannot be refreshed; the SDK would raise a bare BoxSDKError instead of the 401
        if status == 429 and _retry_after(fetch_response) > MAX_RETRY_AFTER:
            return False
        return super().should_retry(fetch_options, fetch_response, attempt_number)

    def retry_after(self, fetch_options: Any, fetch_response: Any, attempt_number: int) -> float:
        return min(super().retry_after(fetch_options, fetch_response, attempt_number), MAX_RETRY_AFTER)


def _retry_after(fetch_response: Any) -> float:
    try:
        return float(fetch_response.headers.get("Retry-After") or 0)
    except ValueError:
        return 0.0


def conflict_of(exc: BoxAPIError) -> dict | None:
    """The existing item of a 409: a list for folders, a single object for files (as Box answers)."""
    info = exc.response_info
    if info.code != "item_name_in_use":
        return None
    conflicts = (info.context_info or {}).get("conflicts")
    if isinstance(conflicts, list):
        conflicts = conflicts[0] if conflicts else None
    return conflicts if isinstance(conflicts, dict) and conflicts.get("id") else None


def translate(exc: BaseException, what: str) -> Exception:
    if isinstance(exc, BoxAPIError):
        info = exc.response_info
        status, code = info.status_code, info.code or ""
        detail = f"{what}: Box answered {status} {code}".rstrip()
        if str(exc.request_info.url).split("#")[0].endswith("/oauth2/token"):
            return PermanentError(f"{what}: Box refused the app credentials ({code or status}); check the "
                                  "client id/secret and that the app is authorised")
        if status == 404:
            return ObjectNotFound(detail)
        if status in (401, 403):
            return PermanentError(f"{detail}; check the token or the app's access to the folder")
        if status in (408, 429) or status >= 500:
            return TransientError(detail)
        return PermanentError(detail)  # the status and Box's error code: never the server's own text
    if isinstance(exc, BoxSDKError):
        cause = exc.error
        if isinstance(cause, requests.RequestException | OSError):
            return TransientError(f"{what}: {type(cause).__name__} talking to Box")
        return PermanentError(f"{what}: {type(exc).__name__} talking to Box")
    if isinstance(exc, requests.RequestException):
        return TransientError(f"{what}: {type(exc).__name__} talking to Box")
    return PermanentError(f"{what}: {type(exc).__name__}")


def auth_from(config: BackendConfig) -> Any:
    creds = config.credentials
    if creds.get("developer_token"):
        return BoxDeveloperTokenAuth(token=str(creds["developer_token"]))
    if creds.get("client_id") and creds.get("client_secret"):
        if not (creds.get("enterprise_id") or creds.get("user_id")):
            raise PermanentError(f"{config.name}: Box client credentials need an enterprise_id or a user_id")
        return BoxCCGAuth(config=CCGConfig(
            client_id=str(creds["client_id"]), client_secret=str(creds["client_secret"]),
            enterprise_id=str(creds["enterprise_id"]) if creds.get("enterprise_id") else None,
            user_id=str(creds["user_id"]) if creds.get("user_id") else None))
    if creds.get("boxAppSettings"):
        from box_sdk_gen import BoxJWTAuth, JWTConfig

        try:
            return BoxJWTAuth(config=JWTConfig.from_config_json_string(json.dumps(creds)))
        except (BoxSDKError, ValueError, ImportError) as exc:
            raise PermanentError(f"{config.name}: unusable Box JWT config ({type(exc).__name__})") from None
    raise PermanentError(f"{config.name}: Box credentials need a developer_token, client_id/client_secret with "
                         "an enterprise_id or user_id, or a JWT app config")
