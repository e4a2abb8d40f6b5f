"""Versions and Object Lock for the S3 backend (``s3.py``): reading a given version, the versions of a key, and
retention that is extended, never shortened."""

from __future__ import annotations

import io
from datetime import datetime
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from .base import PermanentError, TranslatedStream, validate_key
from .s3_client import MIB, BucketMissing


class S3Versions:
    """Mixed into S3Backend: it provides ``client``, ``config``, ``_call`` and ``_error``."""

    def open_version(self, key: str, version_id: str) -> IO[bytes]:
        validate_key(key)
        resp = self._call(f"read {key!r} version {version_id}", lambda: self.client.get_object(
            Bucket=self.config.bucket, Key=key, VersionId=version_id))
        return io.BufferedReader(TranslatedStream(
            resp["Body"].read, (BotoCoreError, ClientError), lambda exc: self._error(exc, f"read {key!r}"),
            close=resp["Body"].close), MIB)

    def retention_extend(self, key: str, version_id: str, until: datetime) -> None:
        validate_key(key)
        mode = self.config.options.get("object_lock_mode")
        if not mode:
            raise PermanentError(f"{self.config.name}: the provider has no object_lock_mode")
        current = self._call("read retention", lambda: self.client.get_object_retention(
            Bucket=self.config.bucket, Key=key, VersionId=version_id)).get("Retention", {})
        if current.get("RetainUntilDate") and current["RetainUntilDate"] >= until:
            return  # never shortened
        self._call("extend retention", lambda: self.client.put_object_retention(
            Bucket=self.config.bucket, Key=key, VersionId=version_id,
            Retention={"Mode": mode, "RetainUntilDate": until}))

    def _versions(self, key: str) -> list[str]:
        found: list[str] = []
        args: dict[str, Any] = {"Bucket": self.config.bucket, "Prefix": key}
        while True:
            try:
                page = self._call("list versions", lambda a=dict(args): self.client.list_object_versions(**a))
            except BucketMissing:
                raise
            except PermanentError:
                return found  # no permission to list versions, or unsupported: a plain delete follows
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if item["Key"] == key:
                    found.append(item["VersionId"])
            if not page.get("IsTruncated"):
                return found
            args.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page.get("NextVersionIdMarker"))
            if args["KeyMarker"] > key:
                return found
