"""Dropbox, through the official SDK: one folder per wedding, content_hash-verified uploads.

Everything lives under one root folder, Dropbox's nearest thing to a bucket: ``/<bucket>`` when the
provider names a bucket, else ``options["root"]`` (default ``/WedBackup``). The root must exist
(``ensure_root()`` creates it), so a renamed or unshared team folder fails loudly instead of being
silently re-created. Keys map to paths under it: ``weddings/<slug>/...`` becomes
``<root>/Wedding_<slug>/...`` (one folder per wedding) and every other key keeps its path;
``list()`` maps paths back so keys round-trip exactly. Dropbox paths are case-insensitive, so two
keys differing only in case are the same file there.

Uploads up to ``part_size`` (capped at Dropbox's 150 MiB per request) go in one request, larger
ones through an upload session; every request carries the content_hash of its bytes so Dropbox
refuses damage in transit, and the file's content_hash in the answer must equal ours. An upload
session cannot be cancelled: one left unfinished expires on Dropbox's side. Dropbox keeps no
per-file custom metadata (without property templates), so ``content_type`` and ``metadata`` are
not stored.
"""

from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import IO, Any, ClassVar, TypeVar

import requests
from dropbox import Dropbox, DropboxTeam
from dropbox import exceptions as dbx
from dropbox.common import PathRoot
from dropbox.content_hash import DropboxContentHasher
from dropbox.files import CommitInfo, FileMetadata, UploadSessionCursor, WriteMode

from .base import (
    Backend,
    BackendConfig,
    HashingReader,
    IntegrityError,
    ObjectInfo,
    ObjectNotFound,
    PermanentError,
    ProviderError,
    TransientError,
    validate_key,
)
from .dropbox_case import folders_to_confirm
from .dropbox_content import VerifiedDownload, content_hash
from .dropbox_errors import dropbox_error, error_tags

T = TypeVar("T")

UPLOAD_LIMIT = 150 * 1024 * 1024  # the most one Dropbox request may carry
WEDDING_FOLDER = "Wedding_"
ATTEMPTS = 4
MAX_RETRY_AFTER = 30.0  # a longer Retry-After goes back to the queue instead of blocking a worker
TIMEOUT = 60.0


class DropboxBackend(Backend):
    kind = "dropbox"
    case_insensitive = True
    storage_classes = ("",)
    known_options: ClassVar[frozenset[str]] = frozenset({"team_member_id", "root_namespace_id", "root"})

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        if config.bucket and "root" in config.options:
            raise PermanentError(f"{config.name}: set either the bucket (root folder name) or options.root")
        root = "/" + config.bucket.strip("/") if config.bucket else config.options.get("root", "/WedBackup")
        if not isinstance(root, str) or (root and (not root.startswith("/") or root.endswith("/"))):
            raise PermanentError(f"{config.name}: Dropbox root must look like '/Folder' (or '' for the app folder)")
        self.root = root
        self.part_size = max(1, min(config.part_size, UPLOAD_LIMIT))
        self.page_size: int | None = None
        self._local = threading.local()
        self._root_seen = root == ""  # the app folder always exists

    # -- client and errors ---------------------------------------------------
    @property
    def client(self) -> Dropbox:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._build_client()
        return client

    def _build_client(self) -> Dropbox:
        creds, options = self.config.credentials, self.config.options
        # The SDK's own retries sleep without a cap; ours honour Retry-After within MAX_RETRY_AFTER.
        common: dict[str, Any] = {"max_retries_on_error": 0, "max_retries_on_rate_limit": 0,
                                  "timeout": TIMEOUT, "user_agent": "WedBackup"}
        if creds.get("refresh_token"):
            if not creds.get("app_key"):
                raise PermanentError(f"{self.config.name}: a Dropbox refresh_token needs app_key and app_secret")
            auth = {"oauth2_refresh_token": creds["refresh_token"], "app_key": creds["app_key"],
                    "app_secret": creds.get("app_secret")}
        elif creds.get("access_token"):
            auth = {"oauth2_access_token": creds["access_token"]}
        else:
            raise PermanentError(f"{self.config.name}: Dropbox credentials need refresh_token, app_key and "
                                 "app_secret (or access_token)")
        member = options.get("team_member_id")
        client = DropboxTeam(**auth, **common).as_user(member) if member else Dropbox(**auth, **common)
        namespace = options.get("root_namespace_id")
        if namespace:
            client = client.with_path_root(PathRoot.root(str(namespace)))
        return client

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one SDK call, retrying throttling and 5xx; route errors (ApiError) reach the caller."""
        name = self.config.name
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn()
            except dbx.RateLimitError as exc:
                delay = float(exc.backoff if exc.backoff is not None else 1)
                error: ProviderError = TransientError(f"{name}: Dropbox is throttling ({what}); retry after {delay:g}s")
                if delay > MAX_RETRY_AFTER:
                    raise error from exc
            except dbx.InternalServerError as exc:
                error = TransientError(f"{name}: Dropbox answered {exc.status_code} ({what})")
                delay = random.uniform(0, min(5.0, 0.2 * 2 ** attempt))
            except requests.exceptions.SSLError as exc:
                raise PermanentError(f"{name}: TLS verification with Dropbox failed ({what})") from exc
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                error = TransientError(f"{name}: cannot reach Dropbox ({what}): {type(exc).__name__}")
                delay = random.uniform(0, min(5.0, 0.2 * 2 ** attempt))
            except dbx.ApiError:
                raise
            except dbx.AuthError as exc:
                raise PermanentError(f"{name}: Dropbox refused the credentials ({'/'.join(error_tags(exc.error))}); "
                                     "reconnect the Dropbox account") from exc
            except dbx.PathRootError as exc:
                raise PermanentError(f"{name}: the Dropbox root_namespace_id is not accessible to this "
                                     "account") from exc
            except dbx.BadInputError as exc:
                hint = (": a team token acts for a member: set the team_member_id option (sent as "
                        "Dropbox-API-Select-User)") if "select-user" in str(exc.message).lower() else ""
                raise PermanentError(f"{name}: Dropbox rejected the request ({what}) as bad input{hint}") from exc
            except dbx.HttpError as exc:
                raise PermanentError(f"{name}: Dropbox answered HTTP {exc.status_code} ({what})") from exc
            if attempt == ATTEMPTS:
                raise error
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _api_error(self, exc: dbx.ApiError, what: str) -> ProviderError:
        return dropbox_error(exc, what, name=self.config.name)

    # -- keys and paths ----------------------------------------------------------
    @classmethod
    def location_of(cls, config: BackendConfig) -> str:
        """Dropbox paths are case-insensitive: /WedBackup and /wedbackup are one folder."""
        opts = config.options
        root = "/" + config.bucket.strip("/") if config.bucket else opts.get("root", "/WedBackup")
        return (f"dropbox|{config.endpoint.rstrip('/').lower()}|{opts.get('team_member_id', '')}:"
                f"{opts.get('root_namespace_id', '')}|{root.lower()}")

    def path_for(self, key: str) -> str:
        """The Dropbox path of a key (``weddings/<slug>/x`` -> ``<root>/Wedding_<slug>/x``)."""
        parts = validate_key(key).split("/")
        if parts[0].lower().startswith(WEDDING_FOLDER.lower()):
            raise PermanentError(f"key {key!r}: a first segment starting with {WEDDING_FOLDER!r} is reserved")
        return self._path(parts)

    def _path(self, parts: list[str]) -> str:
        if parts[0] == "weddings" and len(parts) > 1:
            parts = [WEDDING_FOLDER + parts[1], *parts[2:]]
        return "/".join([self.root, *parts])

    def key_for(self, path: str) -> str | None:
        """The key of a Dropbox path, or None for paths outside what ``path_for`` produces."""
        if not path.lower().startswith(self.root.lower() + "/"):
            return None
        parts = path[len(self.root) + 1:].split("/")
        if parts[0].lower().startswith(WEDDING_FOLDER.lower()):
            return "/".join(["weddings", parts[0][len(WEDDING_FOLDER):], *parts[1:]])
        if parts[0] == "weddings" and len(parts) > 1:
            return None
        return "/".join(parts)

    def _info(self, key: str, md: FileMetadata) -> ObjectInfo:
        return ObjectInfo(key=key, size=md.size, storage_class="", checksums={"content_hash": md.content_hash},
                          version_id=md.rev, modified=md.server_modified.replace(tzinfo=UTC))

    # -- the root folder -----------------------------------------------------------
    def ensure_root(self) -> None:
        """Create the root folder if it is missing (setup, not part of a backup)."""
        if not self.root:
            return
        if self._metadata(self.root, folders=True) is None:
            try:
                self._call("create the root folder", lambda: self.client.files_create_folder_v2(self.root))
            except dbx.ApiError as exc:
                if "conflict" not in error_tags(exc.error):
                    raise self._api_error(exc, f"create {self.root}") from exc
        self._root_seen = False
        self._check_root()

    def _check_root(self) -> None:
        if self._root_seen:
            return
        md = self._metadata(self.root, folders=True)
        if md is None or isinstance(md, FileMetadata):
            raise PermanentError(f"{self.config.name}: the Dropbox folder {self.root} does not exist (or is not "
                                 "shared with this account): create it or fix the provider's bucket/root")
        self._root_seen = True

    # -- the operations ----------------------------------------------------------
    def put(self, key: str, stream: IO[bytes], size: int, *, sha256: str,
            content_type: str = "application/octet-stream", storage_class: str | None = None,
            metadata: dict[str, str] | None = None) -> ObjectInfo:
        path = self.path_for(key)
        self.storage_class_for(storage_class)
        self._check_root()
        self._refuse_case_twin(key, path)
        reader, whole = HashingReader(stream, size, sha256), DropboxContentHasher()
        try:
            if size <= self.part_size:
                md = self._put_small(path, reader, size, whole)
            else:
                md = self._put_session(path, reader, size, whole)
        except dbx.ApiError as exc:
            raise self._api_error(exc, f"upload {key}") from exc
        expected = whole.hexdigest()
        if md.content_hash != expected or md.size != size:
            self._delete_path(path, md.rev)
            raise IntegrityError(f"{self.config.name}: Dropbox content_hash of {key} differs from the bytes sent")
        return self._info(key, md)

    def _refuse_case_twin(self, key: str, path: str) -> None:
        """Dropbox names ignore case: a file named like this one in another case (in its name or a folder's) is
        another key's object, which an overwrite would replace (and a delete of either would remove both).
        Refused, as Box does."""
        existing = self._metadata(path)
        if existing is None:
            return
        held = existing.name if existing.name != path.rsplit("/", 1)[-1] else next(
            (md.name for folder, mine in folders_to_confirm(path, existing.path_display, self.root)
             if (md := self._metadata(folder, folders=True)) is not None and md.name != mine), None)
        if held:
            raise PermanentError(f"{self.config.name}: Dropbox already holds {held!r}, which differs from the "
                                 f"name in {key!r} only in case (Dropbox names ignore case)")

    def _read(self, reader: HashingReader, n: int, whole: DropboxContentHasher) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = reader.read(n - len(buf))
            if not chunk:
                break
            buf += chunk
        whole.update(bytes(buf))
        return bytes(buf)

    @staticmethod
    def _end_of_source(reader: HashingReader) -> None:
        """Before committing: the source must be exactly as long and as hashed as declared."""
        reader.read(1)  # raises if the source grew
        reader.check()

    def _commit(self, path: str) -> CommitInfo:
        return CommitInfo(path=path, mode=WriteMode.overwrite, mute=True)

    def _put_small(self, path: str, reader: HashingReader, size: int, whole: DropboxContentHasher) -> FileMetadata:
        data = self._read(reader, size, whole)
        self._end_of_source(reader)
        return self._call("upload", lambda: self.client.files_upload(
            data, path, mode=WriteMode.overwrite, mute=True, content_hash=content_hash(data)))

    def _put_session(self, path: str, reader: HashingReader, size: int, whole: DropboxContentHasher) -> FileMetadata:
        chunk = self._read(reader, self.part_size, whole)
        session_id = self._call("start an upload session", lambda: self.client.files_upload_session_start(
            chunk, content_hash=content_hash(chunk))).session_id
        offset = len(chunk)
        while size - offset > self.part_size:  # the last part travels with finish
            chunk = self._read(reader, self.part_size, whole)
            self._append(session_id, offset, chunk)
            offset += len(chunk)
        chunk = self._read(reader, size - offset, whole)
        self._end_of_source(reader)  # never commit bytes that differ from the catalogue
        cursor = UploadSessionCursor(session_id=session_id, offset=offset)
        try:
            return self._call("finish an upload session", lambda: self.client.files_upload_session_finish(
                chunk, cursor, self._commit(path), content_hash=content_hash(chunk)))
        except dbx.ApiError as exc:
            if exc.error.is_lookup_failed():
                # A retried finish whose first attempt committed: accept what is there, checked below.
                md = self._metadata(path)
                if md is not None:
                    return md
            raise

    def _append(self, session_id: str, offset: int, chunk: bytes) -> None:
        cursor = UploadSessionCursor(session_id=session_id, offset=offset)
        try:
            self._call("append to an upload session", lambda: self.client.files_upload_session_append_v2(
                chunk, cursor, content_hash=content_hash(chunk)))
        except dbx.ApiError as exc:
            err = exc.error
            # A retry after a lost response: Dropbox already holds this part.
            if not (err.is_incorrect_offset() and err.get_incorrect_offset().correct_offset == offset + len(chunk)):
                raise

    def _metadata(self, path: str, *, folders: bool = False) -> Any:
        """The file's metadata (or a folder's, with ``folders``); None when there is none."""
        try:
            md = self._call("read metadata", lambda: self.client.files_get_metadata(path))
        except dbx.ApiError as exc:
            if exc.error.is_path() and exc.error.get_path().is_not_found():
                return None
            raise self._api_error(exc, f"read metadata of {path}") from exc
        return md if folders or isinstance(md, FileMetadata) else None

    def head(self, key: str) -> ObjectInfo | None:
        md = self._metadata(self.path_for(key))
        return None if md is None else self._info(key, md)

    def open(self, key: str) -> IO[bytes]:
        path = self.path_for(key)
        try:
            md, resp = self._call("download", lambda: self.client.files_download(path))
        except dbx.ApiError as exc:
            err = exc.error
            if err.is_path() and (err.get_path().is_not_found() or err.get_path().is_not_file()):
                raise ObjectNotFound(f"{self.config.name}: no object {key}") from exc
            raise self._api_error(exc, f"download {key}") from exc
        return io.BufferedReader(VerifiedDownload(resp, md.content_hash, key), buffer_size=1024 * 1024)

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        md = self._metadata(path)
        if md is not None:  # folders are not objects: never delete one by key
            self._delete_path(path, md.rev)

    def _delete_path(self, path: str, rev: str) -> None:
        try:
            self._call("delete", lambda: self.client.files_delete_v2(path, parent_rev=rev))
        except dbx.ApiError as exc:
            if exc.error.is_path_lookup() and exc.error.get_path_lookup().is_not_found():
                return
            if exc.error.is_path_write():
                raise TransientError(f"{self.config.name}: {path} changed while being deleted") from exc
            raise self._api_error(exc, f"delete {path}") from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        folder_key = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        parts = folder_key.split("/") if folder_key else []
        folder = self.root if parts in ([], ["weddings"]) else self._path(parts)
        try:
            page = self._call("list", lambda: self.client.files_list_folder(
                folder, recursive=True, limit=self.page_size))
        except dbx.ApiError as exc:
            if exc.error.is_path() and (exc.error.get_path().is_not_found() or exc.error.get_path().is_not_folder()):
                return
            raise self._api_error(exc, f"list {folder}") from exc
        while True:
            for md in page.entries:
                key = self.key_for(md.path_display) if isinstance(md, FileMetadata) else None
                if key is not None and key.startswith(prefix):
                    yield self._info(key, md)
            if not page.has_more:
                return
            cursor = page.cursor
            try:
                page = self._call("list", lambda c=cursor: self.client.files_list_folder_continue(c))
            except dbx.ApiError as exc:
                raise self._api_error(exc, f"continue listing {folder}") from exc

    def shared_link(self, key: str) -> str:
        """A Dropbox shared link to the object (only for weddings whose couple allowed sharing)."""
        return self._link(self.path_for(key), key)

    def folder_link(self, prefix: str) -> str:
        """A Dropbox shared link to the folder of a prefix, e.g. ``weddings/<slug>/`` -> ``<root>/Wedding_<slug>``."""
        folder = prefix.rstrip("/")
        if not folder:
            raise PermanentError(f"{self.config.name}: refusing to share the whole Dropbox root")
        return self._link(self.path_for(folder), prefix)

    def revoke_link(self, url: str) -> bool:
        """Withdraw a shared link: it stops working for anyone who has it. False when this account has no such
        link (it may belong to another account, or be gone already)."""
        try:
            self._call("revoke a shared link", lambda: self.client.sharing_revoke_shared_link(url))
        except dbx.ApiError as exc:
            if exc.error.is_shared_link_not_found():
                return False
            raise self._api_error(exc, "revoke a shared link") from exc
        return True

    def _link(self, path: str, what: str) -> str:
        """Create the shared link of a path, or return the one it already has."""
        try:
            return self._call("share", lambda: self.client.sharing_create_shared_link_with_settings(path)).url
        except dbx.ApiError as exc:
            err = exc.error
            if err.is_shared_link_already_exists():
                existing = err.get_shared_link_already_exists()
                if existing is not None and existing.is_metadata():
                    return existing.get_metadata().url
                links = self._call("share", lambda: self.client.sharing_list_shared_links(
                    path=path, direct_only=True)).links
                if links:
                    return links[0].url
            if err.is_path() and err.get_path().is_not_found():
                raise ObjectNotFound(f"{self.config.name}: nothing at {what} to share") from exc
            raise self._api_error(exc, f"share {what}") from exc
