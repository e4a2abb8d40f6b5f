"""Azure Blob Storage (block blobs) with azure-storage-blob; Azurite in tests."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

import requests
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import (
    BlobBlock,
    BlobServiceClient,
    ContainerClient,
    ContentSettings,
    LinearRetry,
    StandardBlobTier,
)

from .base import (
    Backend,
    BackendConfig,
    HashingReader,
    IntegrityError,
    NeedsRestore,
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    ProviderError,
    TransientError,
    TranslatedStream,
    validate_key,
    with_retries,
)

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REHYDRATE_PRIORITIES = ("Standard", "High")


def _text(value: Any) -> str:
    """SDK enums (StandardBlobTier, StorageErrorCode) and plain strings alike."""
    return "" if value is None else str(getattr(value, "value", value))



class AzureBlobBackend(Backend):
    kind = "azure_blob"
    storage_classes = ("Hot", "Cool", "Cold", "Archive")
    archive_classes = frozenset({"Archive"})
    can_change_class = True
    can_restore = True
    known_options = frozenset({"page_size", "rehydrate_priority"})

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        if not config.bucket:
            raise PermanentError(f"{config.name}: no container configured")
        self.page_size = int(config.options.get("page_size", 1000))
        self.rehydrate_priority = config.options.get("rehydrate_priority", "Standard")
        if self.rehydrate_priority not in REHYDRATE_PRIORITIES:
            raise PermanentError(f"{config.name}: rehydrate_priority must be one of {REHYDRATE_PRIORITIES}")
        self._local = threading.local()

    # -- clients ------------------------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        # The storage SDK's default retry waits ~15 s before the first retry: far too slow to notice an outage.
        kwargs: dict[str, Any] = dict(
            retry_policy=LinearRetry(backoff=0.5, random_jitter_range=0.25, retry_total=1),
            connection_timeout=5, read_timeout=60,
            max_single_get_size=self.config.part_size, max_chunk_get_size=self.config.part_size,
            # A blob up to the part size goes in one Put Blob (never split by the SDK): put() sends that one
            # request our whole-blob MD5 as its transactional Content-MD5.
            max_single_put_size=max(self.config.part_size, 64 * 1024 * 1024),
            # requests would read the proxy variables and ~/.netrc again on every request (a fifth of the
            # SDK's CPU per upload): the proxy for this account is resolved once, in _make_service, and a
            # CA bundle named the way requests reads it is passed on here.
            use_env_settings=False,
            connection_verify=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True,
        )
        return kwargs

    @classmethod
    def location_of(cls, config: BackendConfig) -> str:
        """The account's blob endpoint (its name is part of the host) and the container."""
        account = (config.credentials or {}).get("account_name", "")
        url = config.endpoint.rstrip("/") or (f"https://{account}.blob.core.windows.net" if account else "")
        return f"azure_blob|{url.lower()}|{config.bucket.strip('/')}|"

    def _account_url(self, creds: dict[str, Any]) -> str:
        if self.config.endpoint:
            return self.config.endpoint.rstrip("/")
        if not creds.get("account_name"):
            raise PermanentError(f"{self.config.name}: set an endpoint or credentials.account_name")
        return f"https://{creds['account_name']}.blob.core.windows.net"

    def _make_service(self) -> BlobServiceClient:
        kwargs = self._client_kwargs()
        service = self._service_client(kwargs)
        proxies = requests.utils.get_environ_proxies(service.url)  # HTTPS_PROXY, NO_PROXY... as requests reads them
        return self._service_client({**kwargs, "proxies": proxies}) if proxies else service

    def _service_client(self, kwargs: dict[str, Any]) -> BlobServiceClient:
        creds = self.config.credentials or {}
        try:
            if creds.get("connection_string"):
                return BlobServiceClient.from_connection_string(creds["connection_string"], **kwargs)
            if creds.get("account_key"):
                credential: Any = {"account_name": creds.get("account_name", ""), "account_key": creds["account_key"]}
            elif creds.get("sas_token"):
                credential = creds["sas_token"]
            else:
                raise PermanentError(
                    f"{self.config.name}: credentials need account_name + account_key, connection_string or sas_token"
                )
            return BlobServiceClient(self._account_url(creds), credential=credential, **kwargs)
        except ProviderError:
            raise
        except (ValueError, TypeError) as exc:
            kind = type(exc).__name__
            raise PermanentError(f"{self.config.name}: invalid Azure credentials or endpoint ({kind})") from None

    def _container(self) -> ContainerClient:
        container = getattr(self._local, "container", None)
        if container is None:
            container = self._make_service().get_container_client(self.config.bucket)
            self._local.container = container
        return container

    # -- error vocabulary ---------------------------------------------------
    def _translate(self, exc: BaseException, key: str | None = None) -> ProviderError:
        name, where = self.config.name, f"container {self.config.bucket!r}"
        if isinstance(exc, ProviderError):
            return exc
        # Connection errors may quote the URL, which can carry a SAS signature: name only the type.
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            return TransientError(f"{name}: cannot reach Azure Blob ({type(exc).__name__})")
        if isinstance(exc, ClientAuthenticationError):
            return PermanentError(f"{name}: Azure refused the credentials for {where}: check the account key or SAS")
        if isinstance(exc, HttpResponseError):
            status, code = exc.status_code or 0, _text(exc.error_code)
            if status in (401, 403):
                return PermanentError(f"{name}: Azure refused the credentials for {where} ({code or status}): "
                                      "check the account key or SAS")
            if code == "ContainerNotFound":
                return PermanentError(f"{name}: {where} does not exist: create it or fix the provider settings")
            if code == "BlobArchived":
                return NeedsRestore(f"{name}: {key!r} is in the Archive tier: request a restore first")
            if status == 404:
                return ObjectNotFound(f"{name}: no blob {key!r} in {where}")
            if code == "Md5Mismatch" or (status == 400 and "md5" in (exc.reason or exc.message or "").lower()):
                return IntegrityError(f"{name}: Azure computed a different MD5 for {key!r}")
            if status in TRANSIENT_STATUS or status >= 500:
                return TransientError(f"{name}: Azure Blob answered {status} {code}".rstrip())
            return PermanentError(f"{name}: Azure Blob refused the request for {key!r}: {status} {code}".rstrip())
        return TransientError(f"{name}: Azure Blob error ({type(exc).__name__})")

    def _call(self, fn: Callable[[], T], key: str | None = None, *, attempts: int = 3) -> T:
        def once() -> T:
            try:
                return fn()
            except AzureError as exc:
                raise self._translate(exc, key) from exc

        return with_retries(once, attempts=attempts, base_delay=0.2, max_delay=1.0)

    # -- operations -----------------------------------------------------------
    def _md5(self, reader: HashingReader) -> bytes:
        """The whole-blob MD5 we declare to Azure (a seam the tests use to declare a wrong one)."""
        return reader.hashes["md5"].digest()

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
    ) -> ObjectInfo:
        validate_key(key)
        tier = StandardBlobTier(self.storage_class_for(storage_class))
        reader = HashingReader(stream, size, sha256, algos=("md5",))
        blob = self._container().get_blob_client(key)
        common = dict(standard_blob_tier=tier, metadata=metadata or None)
        if size <= self.config.part_size:
            data = reader.read_exactly(size)
            reader.read_exactly(0)  # the stream must end here: HashingReader raises if it grew
            reader.check()
            declared = self._md5(reader)
            settings = ContentSettings(content_type=content_type, content_md5=bytearray(declared))
            # Our MD5 goes out as the transactional Content-MD5 too (the SDK's validate_content would hash
            # the body again for it); Azure refuses a body that does not match it.
            resp = self._call(lambda: blob.upload_blob(
                data, overwrite=True, content_settings=settings,
                headers={"Content-MD5": base64.b64encode(declared).decode()}, **common), key)
            stored = resp.get("content_md5")
            if stored is not None and bytes(stored).hex() == reader.hexdigest("md5"):
                # Azure computes the Content-MD5 it answers from the bytes it stored: verified without a HEAD.
                return ObjectInfo(key=key, size=size, storage_class=_text(tier), checksums={"md5": bytes(stored).hex()},
                                  version_id=resp.get("version_id"), etag=(resp.get("etag") or "").strip('"') or None,
                                  modified=resp.get("last_modified"), metadata=dict(metadata or {}))
        else:
            block_ids: list[BlobBlock] = []
            while reader.read_bytes < size:
                data = reader.read_exactly(min(self.config.part_size, size - reader.read_bytes))
                block_id = base64.b64encode(f"{len(block_ids):08d}".encode()).decode()
                self._call(lambda d=data, b=block_id: blob.stage_block(b, d, validate_content=True), key)
                block_ids.append(BlobBlock(block_id))
            reader.read_exactly(0)
            # Uncommitted blocks expire on their own: failing before the commit leaves nothing to clean up.
            reader.check()
            settings = ContentSettings(content_type=content_type, content_md5=bytearray(self._md5(reader)))
            self._call(lambda: blob.commit_block_list(block_ids, content_settings=settings, **common), key)
        info = self.head(key)
        expected = reader.hexdigest("md5")
        if info is None or info.size != size or info.checksums.get("md5") != expected:
            self._call(lambda: blob.delete_blob(delete_snapshots="include"), key)
            raise IntegrityError(f"{self.config.name}: Azure reports a different size or MD5 for {key!r}; deleted")
        return info

    def open(self, key: str) -> IO[bytes]:
        validate_key(key)
        blob = self._container().get_blob_client(key)
        downloader = self._call(lambda: blob.download_blob(max_concurrency=1), key)
        return io.BufferedReader(
            TranslatedStream(downloader.read, (AzureError,), lambda exc: self._translate(exc, key)),
            buffer_size=64 * 1024,
        )

    def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        blob = self._container().get_blob_client(key)
        try:
            props = self._call(blob.get_blob_properties, key)
        except ObjectNotFound:
            return None
        return _info(props)

    def delete(self, key: str) -> None:
        validate_key(key)
        blob = self._container().get_blob_client(key)
        with contextlib.suppress(ObjectNotFound):
            self._call(lambda: blob.delete_blob(delete_snapshots="include"), key)
        # With blob versioning on, the delete above only turns the current version into a previous one.
        container = self._container()
        versions = self._call(lambda: [b.version_id for b in container.list_blobs(name_starts_with=key,
                                                                                 include=["versions"])
                                       if b.name == key and b.version_id], key)
        for version_id in versions:
            with contextlib.suppress(ObjectNotFound):
                self._call(lambda v=version_id: blob.delete_blob(version_id=v), key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        pages = self._container().list_blobs(name_starts_with=prefix or None,
                                              results_per_page=self.page_size).by_page()
        while True:
            try:
                page = list(next(pages))
            except StopIteration:
                return
            except AzureError as exc:
                raise self._translate(exc) from exc
            yield from (_info(props) for props in page)

    def change_storage_class(self, key: str, storage_class: str) -> ObjectInfo:
        validate_key(key)
        tier = StandardBlobTier(self.storage_class_for(storage_class))
        blob = self._container().get_blob_client(key)
        self._call(lambda: blob.set_standard_blob_tier(tier), key)
        info = self.head(key)
        if info is None:
            raise ObjectNotFound(f"{self.config.name}: no blob {key!r} in container {self.config.bucket!r}")
        return info

    def request_restore(self, key: str, *, days: int = 2) -> None:
        """Rehydrate out of Archive. Azure moves the blob for good, so ``days`` does not apply."""
        validate_key(key)
        blob = self._container().get_blob_client(key)
        props = self._call(blob.get_blob_properties, key)
        if _text(props.blob_tier) not in self.archive_classes or props.archive_status:
            return  # not archived, or a rehydration is already under way
        default = self.config.default_storage_class
        target = default if default in ("Hot", "Cool", "Cold") else "Hot"
        self._call(lambda: blob.set_standard_blob_tier(StandardBlobTier(target),
                                                       rehydrate_priority=self.rehydrate_priority), key)




def _info(props: Any) -> ObjectInfo:
    md5 = props.content_settings.content_md5 if props.content_settings else None
    return ObjectInfo(
        key=props.name,
        size=props.size,
        storage_class=_text(props.blob_tier) or None,
        checksums={"md5": bytes(md5).hex()} if md5 else {},
        version_id=getattr(props, "version_id", None),
        etag=(props.etag or "").strip('"') or None,
        modified=props.last_modified,
        metadata=dict(props.metadata or {}),
    )
