"""Box (box_sdk_gen, boxsdk 10): keys map to nested folders under a root folder.

``weddings/<slug>/<kind>/<path>`` becomes folders ``weddings`` / ``<slug>`` / ``<kind>`` / ... under
``options["root_folder_id"]`` (default "0"), inside the folder named ``config.bucket`` when one is set
(it must exist: like a bucket, it is never created). Box's integrity check is SHA-1: ``Content-MD5`` on a
plain upload, ``Digest`` per part and for the whole file on a chunked upload, and the file's ``sha1``.
Box names are unique per folder ignoring case, so two keys differing only in case cannot coexist.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any, TypeVar

import requests
from box_sdk_gen import (
    BaseUrls,
    BoxAPIError,
    BoxClient,
    BoxSDKError,
    CreateFolderParent,
    CreateRetentionPolicyAssignmentAssignTo,
    CreateRetentionPolicyAssignmentAssignToTypeField,
    NetworkSession,
    UploadFileAttributes,
    UploadFileAttributesParentField,
    UploadFileVersionAttributes,
    UploadPart,
)

from .base import (
    Backend,
    BackendConfig,
    HashingReader,
    IntegrityError,
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    TransientError,
    validate_key,
)
from .box_sdk import RetryStrategy, auth_from, conflict_of, translate

T = TypeVar("T")
ITEM_FIELDS = ["name", "size", "sha1", "modified_at", "file_version", "etag"]


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class BoxBackend(Backend):
    kind = "box"
    case_insensitive = True
    storage_classes = ("",)
    known_options = frozenset({"root_folder_id", "retention_policy_id"})
    #: Entries per folder-listing request (Box allows up to 1000).
    page_size = 1000

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        self.root_folder_id = str(config.options.get("root_folder_id") or "0")
        self.retention_policy_id = str(config.options.get("retention_policy_id") or "")
        self._auth = auth_from(config)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._folders: dict[tuple[str, ...], str] = {}
        self._retained: set[str] = set()

    # -- plumbing ---------------------------------------------------------------------
    @property
    def client(self) -> BoxClient:
        client = getattr(self._local, "client", None)
        if client is None:
            session = NetworkSession(retry_strategy=RetryStrategy(
                max_attempts=4, retry_base_interval=0.2, max_retries_on_exception=1))
            if self.config.endpoint:
                base = self.config.endpoint.rstrip("/")
                session = session.with_custom_base_urls(
                    BaseUrls(base_url=base, upload_url=f"{base}/api", oauth_2_url=f"{base}/oauth2"))
            client = self._local.client = BoxClient(auth=self._auth, network_session=session)
        return client

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (BoxSDKError, requests.RequestException) as exc:
            raise translate(exc, f"{self.config.name}: {what}") from None

    def _split(self, key: str) -> tuple[tuple[str, ...], str]:
        parts = validate_key(key).split("/")
        return tuple(parts[:-1]), parts[-1]

    # -- folders ----------------------------------------------------------------------------
    def _base_folder(self) -> str:
        """The root folder, or the ``bucket`` folder inside it; PermanentError naming it when missing."""
        with self._lock:
            cached = self._folders.get(())
        if cached:
            return cached
        try:
            self._call("root folder", lambda: self.client.folders.get_folder_by_id(self.root_folder_id,
                                                                                    fields=["name"]))
        except ObjectNotFound:
            raise PermanentError(f"{self.config.name}: Box root folder {self.root_folder_id!r} does not exist "
                                 "or the app cannot see it") from None
        folder_id = self.root_folder_id
        if self.config.bucket:
            found = self._find(folder_id, self.config.bucket, "folder")
            if found is None:
                raise PermanentError(f"{self.config.name}: Box folder {self.config.bucket!r} does not exist in "
                                     f"folder {self.root_folder_id}; create it or fix the provider's bucket")
            folder_id = found.id
        with self._lock:
            self._folders[()] = folder_id
        return folder_id

    def _folder_id(self, path: tuple[str, ...], *, create: bool) -> str | None:
        folder_id = self._base_folder()
        for depth in range(1, len(path) + 1):
            sub = path[:depth]
            with self._lock:
                cached = self._folders.get(sub)
            if cached is None:
                if create:
                    cached = self._create_folder(folder_id, sub[-1])
                else:
                    found = self._find(folder_id, sub[-1], "folder")
                    if found is None:
                        return None
                    cached = found.id
                with self._lock:
                    self._folders[sub] = cached
            folder_id = cached
            if create and depth == 2 and sub[0] == "weddings":
                self._retain(folder_id)
        return folder_id

    def _create_folder(self, parent_id: str, name: str) -> str:
        try:
            return self.client.folders.create_folder(name, CreateFolderParent(id=parent_id)).id
        except BoxAPIError as exc:
            if exc.response_info.status_code != 409:
                raise translate(exc, f"{self.config.name}: create folder {name!r}") from None
            existing = conflict_of(exc)  # another worker created it first: reuse it
            if existing is None or existing.get("type") != "folder" or existing.get("name") != name:
                raise PermanentError(f"{self.config.name}: Box already has an item named like folder {name!r} "
                                     "(Box names ignore case)") from None
            return str(existing["id"])
        except (BoxSDKError, requests.RequestException) as exc:
            raise translate(exc, f"{self.config.name}: create folder {name!r}") from None

    def _retain(self, folder_id: str) -> None:
        if not self.retention_policy_id or folder_id in self._retained:
            return
        assign_to = CreateRetentionPolicyAssignmentAssignTo(
            type=CreateRetentionPolicyAssignmentAssignToTypeField.FOLDER, id=folder_id)
        try:
            self.client.retention_policy_assignments.create_retention_policy_assignment(
                self.retention_policy_id, assign_to)
        except BoxAPIError as exc:
            what = f"{self.config.name}: assign retention policy {self.retention_policy_id}"
            if exc.response_info.status_code == 404:
                raise PermanentError(f"{what}: Box has no such policy or folder") from None
            if exc.response_info.status_code != 409:  # 409: already assigned
                raise translate(exc, what) from None
        except (BoxSDKError, requests.RequestException) as exc:
            raise translate(exc, f"{self.config.name}: assign retention policy") from None
        with self._lock:
            self._retained.add(folder_id)

    def _items(self, folder_id: str, limit: int) -> Iterator[Any]:
        marker: str | None = None
        while True:
            page = self._call("list folder", lambda m=marker: self.client.folders.get_folder_items(
                folder_id, fields=ITEM_FIELDS, usemarker=True, marker=m, limit=limit))
            yield from page.entries or []
            marker = page.next_marker
            if not marker:
                return

    def _find(self, folder_id: str, name: str, kind: str) -> Any | None:
        return next((i for i in self._items(folder_id, 1000) if i.type == kind and i.name == name), None)

    def _file(self, key: str) -> Any | None:
        path, name = self._split(key)
        try:
            folder_id = self._folder_id(path, create=False)
            return None if folder_id is None else self._find(folder_id, name, "file")
        except ObjectNotFound:  # a cached folder was deleted behind our back
            self._forget()
            return None

    def _forget(self) -> None:
        with self._lock:
            self._folders.clear()
            self._retained.clear()

    def _info(self, key: str, item: Any) -> ObjectInfo:
        version = getattr(item, "file_version", None)
        modified = item.modified_at
        return ObjectInfo(key=key, size=int(item.size or 0), storage_class="", checksums={"sha1": item.sha_1},
                          version_id=getattr(version, "id", None), etag=item.etag,
                          modified=modified if isinstance(modified, datetime) else None)

    # -- the contract ---------------------------------------------------------------------
    def put(self, key: str, stream: IO[bytes], size: int, *, sha256: str,
            content_type: str = "application/octet-stream", storage_class: str | None = None,
            metadata: dict[str, str] | None = None) -> ObjectInfo:
        path, name = self._split(key)
        self.storage_class_for(storage_class)
        reader = HashingReader(stream, size, sha256, algos=("sha1",))
        try:
            folder_id = self._folder_id(path, create=True)
            item = None
            if size > self.config.part_size:
                item = self._put_chunked(folder_id, name, reader, size)
            if item is None:  # small, or below Box's minimum for chunked uploads
                item = self._put_plain(folder_id, name, reader, size)
        except ObjectNotFound:
            self._forget()  # a cached folder was deleted behind our back: the next attempt re-creates it
            raise TransientError(f"{self.config.name}: a Box folder of {key} vanished during the upload") from None
        if item.sha_1 != reader.hexdigest("sha1"):
            with contextlib.suppress(TransientError, PermanentError):
                self._delete_id(item.id)
            raise IntegrityError(f"{self.config.name}: Box reports sha1 {item.sha_1} for {key}, "
                                 f"we sent {reader.hexdigest('sha1')}")
        return self._info(key, item)

    def _put_plain(self, folder_id: str, name: str, reader: HashingReader, size: int) -> Any:
        # Box wants the SHA-1 in a header before the body, so the (small) body is read first.
        data = reader.read_exactly(size)
        reader.read(1)  # end of stream: HashingReader notices a source longer than declared
        reader.check()
        sha1 = reader.hexdigest("sha1")
        try:
            files = self.client.uploads.upload_file(
                UploadFileAttributes(name=name, parent=UploadFileAttributesParentField(id=folder_id)),
                io.BytesIO(data), file_file_name=name, content_md_5=sha1)
        except BoxAPIError as exc:
            existing = conflict_of(exc) if exc.response_info.status_code == 409 else None
            if existing is None:
                raise translate(exc, f"{self.config.name}: upload {name!r}") from None
            file_id = self._overwritable(existing, name)
            files = self._call(f"upload {name!r}", lambda: self.client.uploads.upload_file_version(
                file_id, UploadFileVersionAttributes(name=name), io.BytesIO(data), file_file_name=name,
                content_md_5=sha1))
        except (BoxSDKError, requests.RequestException) as exc:
            raise translate(exc, f"{self.config.name}: upload {name!r}") from None
        return files.entries[0]

    def _overwritable(self, existing: dict, name: str) -> str:
        if existing.get("type") != "file" or existing.get("name") != name:
            raise PermanentError(f"{self.config.name}: Box already has an item named like {name!r} "
                                 "(Box names ignore case)")
        return str(existing["id"])

    def _put_chunked(self, folder_id: str, name: str, reader: HashingReader, size: int) -> Any | None:
        chunked = self.client.chunked_uploads
        try:
            session = chunked.create_file_upload_session(folder_id, size, name)
        except BoxAPIError as exc:
            info = exc.response_info
            if info.status_code == 400 and info.code == "file_size_too_small":
                return None
            existing = conflict_of(exc) if info.status_code == 409 else None
            if existing is None:
                raise translate(exc, f"{self.config.name}: start upload of {name!r}") from None
            file_id = self._overwritable(existing, name)
            session = self._call(f"start upload of {name!r}", lambda: chunked.
                                 create_file_upload_session_for_existing_file(file_id, size))
        except (BoxSDKError, requests.RequestException) as exc:
            raise translate(exc, f"{self.config.name}: start upload of {name!r}") from None
        endpoints = session.session_endpoints
        try:
            parts: list[UploadPart] = []
            offset = 0
            while offset < size:
                chunk = reader.read_exactly(min(session.part_size, size - offset))
                part_sha1 = hashlib.sha1(chunk).digest()  # noqa: S324 - Box's own checksum
                end = offset + len(chunk) - 1
                uploaded = self._call("upload part", lambda c=chunk, d=part_sha1, o=offset, e=end: chunked.
                                      upload_file_part_by_url(endpoints.upload_part, io.BytesIO(c), f"sha={_b64(d)}",
                                                              f"bytes {o}-{e}/{size}")).part
                if (uploaded.sha_1 or "").lower() != part_sha1.hex() or uploaded.offset != offset \
                        or uploaded.size != len(chunk):
                    raise IntegrityError(f"{self.config.name}: Box acknowledged part at {offset} with other bytes")
                parts.append(UploadPart(part_id=uploaded.part_id, offset=offset, size=len(chunk),
                                        sha_1=uploaded.sha_1))
                offset += len(chunk)
            reader.read(1)  # end of stream: HashingReader notices a source longer than declared
            reader.check()
            digest = f"sha={_b64(reader.hashes['sha1'].digest())}"
            files = self._call(f"commit upload of {name!r}", lambda: chunked.
                               create_file_upload_session_commit_by_url(endpoints.commit, parts, digest))
            if files is None:  # 202 after all retries: Box is still processing the parts
                raise TransientError(f"{self.config.name}: Box did not finish processing the parts of {name!r}")
            return files.entries[0]
        except BaseException:
            with contextlib.suppress(Exception):
                chunked.delete_file_upload_session_by_url(endpoints.abort)
            raise

    def open(self, key: str) -> IO[bytes]:
        item = self._file(key)
        if item is None:
            raise ObjectNotFound(f"{self.config.name}: no object {key}")
        stream = self._call(f"download {key}", lambda: self.client.downloads.download_file(item.id))
        if stream is None:
            raise TransientError(f"{self.config.name}: Box returned no content for {key}")
        return io.BufferedReader(_Download(stream, f"{self.config.name}: download {key}"))

    def head(self, key: str) -> ObjectInfo | None:
        item = self._file(key)
        return None if item is None else self._info(key, item)

    def delete(self, key: str) -> None:
        item = self._file(key)
        if item is not None:
            self._delete_id(item.id)

    def _delete_id(self, file_id: str) -> None:
        try:
            self._call("delete", lambda: self.client.files.delete_file_by_id(file_id))
        except ObjectNotFound:
            return
        # Purge from the trash too, so "delete" frees the space; a retention policy may forbid that.
        with contextlib.suppress(ObjectNotFound, PermanentError):
            self._call("purge", lambda: self.client.trashed_files.delete_trashed_file_by_id(file_id))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if prefix:
            validate_key(prefix.rstrip("/") or "x")
        path = tuple(prefix.split("/")[:-1])
        try:
            folder_id = self._folder_id(path, create=False)
        except ObjectNotFound:
            self._forget()
            folder_id = self._folder_id(path, create=False)
        if folder_id is not None:
            yield from self._walk(folder_id, "/".join(path) + "/" if path else "", prefix)

    def _walk(self, folder_id: str, dir_key: str, prefix: str) -> Iterator[ObjectInfo]:
        for item in self._items(folder_id, self.page_size):
            key = dir_key + item.name
            if item.type == "file" and key.startswith(prefix):
                yield self._info(key, item)
            elif item.type == "folder" and (key + "/").startswith(prefix):
                yield from self._walk(item.id, key + "/", prefix)


class _Download(io.RawIOBase):
    """The SDK's response stream, with network errors turned into TransientError."""

    def __init__(self, stream: IO[bytes], what: str):
        self._stream, self._what = stream, what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._stream.read(len(buffer))
        except (requests.RequestException, OSError) as exc:
            raise TransientError(f"{self._what}: {type(exc).__name__}") from None
        buffer[: len(data)] = data
        return len(data)




