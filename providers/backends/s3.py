"""Amazon S3 and Wasabi (S3-compatible) through boto3.

Integrity: every PUT and every part carries ``ChecksumSHA256`` (one integrity header: no ``Content-MD5``
as well), so the server refuses bytes that differ from what we hashed. Afterwards
``head_object(ChecksumMode="ENABLED")`` must report the same SHA-256: the full-object value for a single
PUT, the composite ``base64(sha256(part digests))-N`` we computed for a multipart upload. A server that
reports no SHA-256 (older S3-compatibles) is checked by its ETag instead (MD5, or MD5-of-part-MD5s), except
under SSE-KMS where the ETag is no MD5; part MD5s are computed only until the server has shown that it
reports SHA-256.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import math
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from .base import (
    Backend,
    BackendConfig,
    HashingReader,
    IntegrityError,
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    ProviderError,
    TranslatedStream,
    validate_key,
    with_retries,
)
from .s3_client import MIB, BucketMissing, s3_client_new, s3_error
from .s3_lifecycle import S3Lifecycle
from .s3_versions import S3Versions

MIN_PART_SIZE = 5 * MIB
MAX_PARTS = 10_000
MAX_COPY_SIZE = 5 * 1024 * MIB
SSE_MODES = ("AES256", "aws:kms")

# Metadata that copy_object with MetadataDirective="REPLACE" would otherwise drop.
COPY_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage")

T = TypeVar("T")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()




class S3Backend(S3Lifecycle, S3Versions, Backend):
    kind = "aws_s3"
    storage_classes = ("STANDARD", "INTELLIGENT_TIERING", "STANDARD_IA", "ONEZONE_IA", "GLACIER_IR", "GLACIER",
                       "DEEP_ARCHIVE")
    archive_classes = frozenset({"GLACIER", "DEEP_ARCHIVE"})
    can_change_class = True
    can_restore = True
    # object_lock_mode: GOVERNANCE or COMPLIANCE, for a bucket created with Object Lock on (which also versions
    # it); keep_versions: delete() leaves a delete marker and the older versions for the bucket's lifecycle rule
    # (NoncurrentVersionExpiration) to purge after its soft-delete window, instead of purging them itself.
    known_options = frozenset({"sse", "kms_key_id", "addressing_style", "part_size", "object_lock_mode",
                               "keep_versions"})
    can_lock = True
    reads_versions = True

    #: MaxKeys per list request; tests lower it to exercise paging.
    page_size: int = 1000

    protocol = "s3"

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        opts = config.options
        if opts.get("sse") not in (None, "", *SSE_MODES):
            raise PermanentError(f"{config.name}: option sse must be one of {', '.join(SSE_MODES)}")
        if opts.get("kms_key_id") and opts.get("sse") != "aws:kms":
            raise PermanentError(f"{config.name}: option kms_key_id needs sse='aws:kms'")
        if opts.get("addressing_style", "auto") not in ("auto", "path", "virtual"):
            raise PermanentError(f"{config.name}: option addressing_style must be auto, path or virtual")
        creds = config.credentials or {}
        if not creds.get("access_key_id") or not creds.get("secret_access_key"):
            raise PermanentError(f"{config.name}: credentials need access_key_id and secret_access_key")
        try:
            part_size = int(opts.get("part_size") or config.part_size)
        except (TypeError, ValueError):
            raise PermanentError(f"{config.name}: option part_size must be a number of bytes") from None
        # S3 refuses parts under 5 MiB (except the last), so a smaller setting could never work.
        self.part_size = max(part_size, MIN_PART_SIZE)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._bucket_checked = False
        #: Whether the server reports ChecksumSHA256 on HEAD (None until the first verified put shows it).
        self._reports_sha256: bool | None = None

    # -- client and errors ------------------------------------------------------------------
    @property
    def region(self) -> str:
        return self.config.region or "us-east-1"

    def endpoint_url(self) -> str | None:
        return self.config.endpoint or None

    @property
    def client(self) -> Any:
        """One boto3 client per backend, built on first use and shared by every thread (boto3 clients are
        thread-safe; building one costs more CPU than a small upload). Its pool holds a connection per thread."""
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = s3_client_new(self.config, region=self.region, endpoint_url=self.endpoint_url())
                client = self._client
        return client

    def _error(self, exc: Exception, what: str) -> ProviderError:
        return s3_error(exc, what, config=self.config, endpoint_url=self.endpoint_url())

    def _call(self, what: str, fn: Callable[[], T], *, attempts: int = 3) -> T:
        def once() -> T:
            try:
                return fn()
            except (ClientError, BotoCoreError) as exc:
                raise self._error(exc, what) from exc

        return with_retries(once, attempts=attempts, base_delay=0.2, max_delay=2.0)

    def _head(self, key: str, version_id: str | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": self.config.bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id:
            args["VersionId"] = version_id
        return self._call(f"head {key!r}", lambda: self.client.head_object(**args))

    def _check_bucket(self) -> None:
        """HEAD answers a bare 404 for a missing bucket too; tell the two apart once per backend."""
        if self._bucket_checked:
            return
        try:
            self._call("check", lambda: self.client.head_bucket(Bucket=self.config.bucket))
        except ObjectNotFound:
            raise BucketMissing(f"{self.config.name}: bucket {self.config.bucket!r} does not exist") from None
        self._bucket_checked = True

    def _sse_args(self) -> dict[str, str]:
        opts = self.config.options
        if not opts.get("sse"):
            return {}
        args = {"ServerSideEncryption": opts["sse"]}
        if opts.get("kms_key_id"):
            args["SSEKMSKeyId"] = opts["kms_key_id"]
        return args

    def _info(self, key: str, resp: dict[str, Any], checksums: dict[str, str] | None = None) -> ObjectInfo:
        if checksums is None:
            checksums = {}
            sha = resp.get("ChecksumSHA256") or ""
            if sha and "-" not in sha:  # a multipart composite is no SHA-256 of the object: left out
                checksums["sha256"] = base64.b64decode(sha).hex()
        version = resp.get("VersionId")
        return ObjectInfo(
            key=key,
            size=int(resp.get("ContentLength", resp.get("Size", 0))),
            storage_class=resp.get("StorageClass") or "STANDARD",
            checksums=checksums,
            version_id=None if version in (None, "null") else version,
            etag=(resp.get("ETag") or "").strip('"') or None,
            modified=resp.get("LastModified"),
            metadata=dict(resp.get("Metadata") or {}),
        )

    # -- writing -----------------------------------------------------------------------------
    def put(
        self,
        key: str,
        stream: IO[bytes],
        size: int,
        *,
        sha256: str,
        content_type: str = "application/octet-stream",
        storage_class: str | None = None,
        metadata: dict[str, str] | None = None,
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        """``retain_until``: write the object locked until then (a provider with ``object_lock_mode`` only)."""
        validate_key(key)
        args = {"Bucket": self.config.bucket, "Key": key, "ContentType": content_type, "Metadata": metadata or {},
                "StorageClass": self.storage_class_for(storage_class), **self._sse_args()}
        if retain_until is not None:
            if not self.locks():
                raise PermanentError(f"{self.config.name}: asked to lock {key!r}, but the provider has no "
                                     "object_lock_mode (its bucket must be created with Object Lock on)")
            args.update(ObjectLockMode=self.config.options["object_lock_mode"], ObjectLockRetainUntilDate=retain_until)
        reader = HashingReader(stream, size, sha256)
        if size <= self.part_size:
            return self._put_single(key, reader, args)
        return self._put_multipart(key, reader, args)

    def _put_single(self, key: str, reader: HashingReader, args: dict[str, Any]) -> ObjectInfo:
        data = reader.read_exactly(reader.size)
        reader.read(1)  # must be end of stream: the reader raises if the source grew
        reader.check()
        # The reader hashed exactly these bytes (or brought the digest of them), so its sha256 is data's.
        sha = _b64(reader.hashes["sha256"].digest())
        resp = self._call(f"upload {key!r}", lambda: self.client.put_object(Body=data, ChecksumSHA256=sha, **args))
        if resp.get("ChecksumSHA256") == sha:
            # The server checked the body against our signed SHA-256 (a mismatch is a BadDigest refusal) and
            # says so in its answer: verified without a HEAD. A server that does not know the header does
            # not echo it, and gets the HEAD below. (_reports_sha256 is about HEAD and stays HEAD's to set.)
            return ObjectInfo(key=key, size=reader.size, storage_class=args["StorageClass"],
                              checksums={"sha256": reader.hexdigest()},
                              version_id=None if resp.get("VersionId") in (None, "null") else resp["VersionId"],
                              etag=(resp.get("ETag") or "").strip('"') or None, metadata=dict(args["Metadata"]))
        # The MD5 is only needed when the server reports no SHA-256 (the ETag fallback): computed then.
        return self._verify(key, resp.get("VersionId"), reader, sha,
                            lambda: hashlib.md5(data, usedforsecurity=False).hexdigest())

    def _put_multipart(self, key: str, reader: HashingReader, args: dict[str, Any]) -> ObjectInfo:
        part_size = max(self.part_size, math.ceil(reader.size / MAX_PARTS))
        upload = self._call(f"start upload {key!r}", lambda: self.client.create_multipart_upload(
            ChecksumAlgorithm="SHA256", **args))
        ids = {"Bucket": self.config.bucket, "Key": key, "UploadId": upload["UploadId"]}
        parts: list[dict[str, Any]] = []
        digests, md5s = [], []
        # Part MD5s only serve the ETag fallback; skip them once the server has shown it reports SHA-256.
        want_md5 = self._reports_sha256 is not True
        try:
            while reader.read_bytes < reader.size:
                data = reader.read_exactly(min(part_size, reader.size - reader.read_bytes))
                digests.append(hashlib.sha256(data).digest())
                if want_md5:
                    md5s.append(hashlib.md5(data, usedforsecurity=False).digest())
                parts.append(self._upload_part(ids, len(parts) + 1, data, digests[-1]))
            reader.read(1)
            reader.check()
            resp = self._call(f"complete upload {key!r}", lambda: self.client.complete_multipart_upload(
                MultipartUpload={"Parts": parts}, **ids))
        except BaseException:
            with contextlib.suppress(Exception):  # best effort; a lifecycle rule reaps leftovers
                self.client.abort_multipart_upload(**ids)
            raise
        n = len(parts)
        composite = f"{_b64(hashlib.sha256(b''.join(digests)).digest())}-{n}"
        etag = (lambda: f"{hashlib.md5(b''.join(md5s), usedforsecurity=False).hexdigest()}-{n}") if want_md5 else None
        return self._verify(key, resp.get("VersionId"), reader, composite, etag)

    def _upload_part(self, ids: dict[str, Any], number: int, data: bytes, digest: bytes) -> dict[str, Any]:
        # One integrity header: the server checks ChecksumSHA256 (a Content-MD5 as well would cost an MD5 pass).
        resp = self._call(f"upload part {number} of {ids['Key']!r}", lambda: self.client.upload_part(
            PartNumber=number, Body=data, ChecksumSHA256=_b64(digest), **ids))
        if resp.get("ChecksumSHA256") not in (None, _b64(digest)):
            raise IntegrityError(f"{self.config.name}: part {number} of {ids['Key']!r} stored a different SHA-256")
        return {"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": _b64(digest)}

    def _verify(self, key: str, version: str | None, reader: HashingReader, sha: str,
                etag: Callable[[], str] | None) -> ObjectInfo:
        """Compare what the server reports with what we computed; on mismatch remove what we wrote.

        A multipart object reports only the composite value; it is derived from the part digests of the
        very bytes whose full SHA-256 the reader checked, so a match vouches for ``sha256`` too. ``etag``
        computes the expected MD5 ETag for servers that report no SHA-256 (None: not computed).
        """
        head = self._head(key, version)
        reported = head.get("ChecksumSHA256")
        checksums = {"sha256": reader.hexdigest()}
        if reported:
            self._reports_sha256 = True
        if int(head.get("ContentLength", -1)) != reader.size:
            problem = f"size {head.get('ContentLength')} instead of {reader.size}"
        elif reported:
            # Some servers report a composite without the "-N" suffix.
            ok = reported == sha or ("-" in sha and reported == sha.rsplit("-", 1)[0])
            problem = "" if ok else "a different SHA-256"
        elif self.config.options.get("sse") != "aws:kms":
            self._reports_sha256 = False
            if etag is None:  # the server stopped reporting SHA-256 and the part MD5s were skipped: put again
                problem = "no SHA-256 reported (checked by MD5 ETag on the next attempt)"
            else:
                expected = etag()
                problem = "" if (head.get("ETag") or "").strip('"') == expected else "a different MD5 ETag"
                if "-" not in expected:
                    checksums = {"md5": expected}
        else:
            self._discard(key, head.get("VersionId"))
            raise PermanentError(f"{self.config.name}: the server reports no SHA-256 and, under SSE-KMS, no MD5 "
                                 f"ETag, so {key!r} cannot be verified; removed it")
        if problem:
            self._discard(key, head.get("VersionId"))
            raise IntegrityError(f"{self.config.name}: {key!r} was stored with {problem}; removed it")
        return self._info(key, head, checksums)

    def _discard(self, key: str, version: str | None) -> None:
        args = {"Bucket": self.config.bucket, "Key": key}
        if version and version != "null":
            args["VersionId"] = version
        self._call(f"delete {key!r}", lambda: self.client.delete_object(**args))

    # -- reading -----------------------------------------------------------------------------
    def open(self, key: str) -> IO[bytes]:
        validate_key(key)
        resp = self._call(f"read {key!r}", lambda: self.client.get_object(Bucket=self.config.bucket, Key=key))
        return io.BufferedReader(TranslatedStream(
            resp["Body"].read, (BotoCoreError, ClientError), lambda exc: self._error(exc, f"read {key!r}"),
            close=resp["Body"].close), MIB)

    def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        try:
            resp = self._head(key)
        except ObjectNotFound:
            self._check_bucket()
            return None
        return self._info(key, resp)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Lazily page with ListObjectsV2 (one request per ``page_size`` keys, each retried on its own)."""
        args: dict[str, Any] = {"Bucket": self.config.bucket, "Prefix": prefix}
        while True:
            page = self._call("list", lambda a=dict(args): self.client.list_objects_v2(MaxKeys=self.page_size, **a))
            for obj in page.get("Contents", []):
                yield self._info(obj["Key"], obj)
            if not page.get("IsTruncated"):
                return
            args["ContinuationToken"] = page["NextContinuationToken"]

    # -- deleting, classes, restore ----------------------------------------------------------
    def delete(self, key: str) -> None:
        """Delete every version and delete marker of ``key``, or the object if versions cannot be listed. With
        ``keep_versions`` or ``object_lock_mode``: only a delete marker, the versions stay for the bucket's
        lifecycle rule to purge once its soft-delete window has passed (and a locked one cannot go before)."""
        validate_key(key)
        if self.config.options.get("keep_versions") or self.config.options.get("object_lock_mode"):
            self._discard(key, None)
            return
        versions = self._versions(key)
        if not versions:
            self._discard(key, None)
        for version in versions:
            self._discard(key, version)

    def change_storage_class(self, key: str, storage_class: str) -> ObjectInfo:
        """Copy the object onto itself in the new class, keeping its headers and metadata, then verify."""
        validate_key(key)
        cls = self.storage_class_for(storage_class)
        before = self._head(key)
        if (before.get("StorageClass") or "STANDARD") == cls:
            return self._info(key, before)
        if before["ContentLength"] > MAX_COPY_SIZE:
            raise PermanentError(f"{self.config.name}: {key!r} is over 5 GB; class changes need a multipart copy, "
                                 "which this backend does not do yet")
        source = {"Bucket": self.config.bucket, "Key": key}
        if before.get("VersionId") not in (None, "null"):
            source["VersionId"] = before["VersionId"]
        kept = {h: before[h] for h in COPY_HEADERS if before.get(h)}
        resp = self._call(f"change class of {key!r}", lambda: self.client.copy_object(
            Bucket=self.config.bucket, Key=key, CopySource=source, StorageClass=cls, MetadataDirective="REPLACE",
            Metadata=before.get("Metadata") or {}, ChecksumAlgorithm="SHA256", **kept, **self._sse_args()))
        after = self._head(key, resp.get("VersionId"))
        old_sum, new_sum = before.get("ChecksumSHA256"), after.get("ChecksumSHA256")
        same_form = bool(old_sum and new_sum) and ("-" in old_sum) == ("-" in new_sum)
        if after["ContentLength"] != before["ContentLength"] or (same_form and old_sum != new_sum):
            if "VersionId" in source and after.get("VersionId") not in (None, "null", source["VersionId"]):
                self._discard(key, after["VersionId"])
            raise IntegrityError(f"{self.config.name}: the copy of {key!r} in {cls} differs from the original")
        if "VersionId" in source and after.get("VersionId") not in (None, "null", source["VersionId"]):
            # Copy, verify, then delete: the superseded version would keep costing in its old class.
            self._discard(key, source["VersionId"])
        return self._info(key, after)

    def request_restore(self, key: str, *, days: int = 2) -> None:
        """Ask for a temporary readable copy of an archived object (Standard tier). Idempotent."""
        validate_key(key)
        head = self._head(key)
        if head.get("StorageClass") not in self.archive_classes or 'ongoing-request="true"' in head.get("Restore", ""):
            return

        def restore() -> None:
            try:
                self.client.restore_object(Bucket=self.config.bucket, Key=key, RestoreRequest={
                    "Days": days, "GlacierJobParameters": {"Tier": "Standard"}})
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "RestoreAlreadyInProgress":
                    raise

        self._call(f"restore {key!r}", restore)


class WasabiBackend(S3Backend):
    """Wasabi speaks S3 with a single storage class and no archive tier."""

    kind = "wasabi"
    storage_classes = ("STANDARD",)
    archive_classes = frozenset()
    can_change_class = False
    can_restore = lifecycle_rules = False  # one class: nothing for lifecycle rules to tier
    change_storage_class = Backend.change_storage_class
    request_restore = Backend.request_restore

    def endpoint_url(self) -> str | None:
        return self.config.endpoint or f"https://s3.{self.region}.wasabisys.com"

