"""A small in-memory fake of the Box API, for exactly the routes ``providers.backends.box`` uses.

Shapes follow Box's public reference (developer.box.com): the standard error object, 409
``item_name_in_use`` with ``context_info.conflicts`` (a list for folders, one object for files, as the
real service answers), SHA-1 ``Content-MD5`` on uploads, chunked upload sessions whose
``session_endpoints`` point back at this server, RFC 3230 ``Digest: sha=<base64>`` on parts and commit,
the 302 to a download URL, 401 with an empty body and ``WWW-Authenticate``, 429 with ``Retry-After``.
Like Box, names are unique per folder ignoring case. API routes live under ``/2.0``, upload routes under
``/api/2.0`` (``upload_url = base + "/api"``), the token endpoint at ``/oauth2/token``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import math
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from providers.localservers.base import free_port, wait_for_port

BOX_MIN_CHUNKED_SIZE = 20_000_000
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
BOX_TOKEN_AUDIENCE = "https://api.box.com/oauth2/token"
BOX_PART_SIZE = 8 * 1024 * 1024
USER = {"type": "user", "id": "11446498", "name": "Fake Box User", "login": "fake@example.com"}
_INVALID_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class BoxError(Exception):
    def __init__(self, status: int, code: str, message: str = "", *, context_info: dict | None = None,
                 headers: dict[str, str] | None = None, empty: bool = False):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.context_info, self.headers, self.empty = context_info, headers or {}, empty

    def body(self) -> dict[str, Any]:
        out = {"type": "error", "status": self.status, "code": self.code, "message": self.message,
               "help_url": "https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/",
               "request_id": secrets.token_hex(6)}
        if self.context_info is not None:
            out["context_info"] = self.context_info
        return out


def not_found(kind: str, item_id: str) -> BoxError:
    return BoxError(404, "not_found", "Not Found", context_info={"errors": [{
        "reason": "invalid_parameter", "name": kind,
        "message": f"Invalid value '{item_id}'. '{kind}' with value '{item_id}' not found"}]})


@dataclass
class Folder:
    id: str
    name: str
    parent_id: str | None
    created_at: str = field(default_factory=_now)
    sequence_id: int = 0


@dataclass
class File:
    id: str
    name: str
    parent_id: str
    content: bytes
    version_id: str
    created_at: str = field(default_factory=_now)
    modified_at: str = field(default_factory=_now)
    sequence_id: int = 0
    trashed: bool = False

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.content).hexdigest()  # noqa: S324 - Box's own checksum


@dataclass
class Session:
    id: str
    file_size: int
    part_size: int
    folder_id: str | None
    file_name: str | None
    file_id: str | None
    parts: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # offset -> (part_id, bytes)
    expires_at: str = field(default_factory=lambda: (datetime.now(UTC) + timedelta(days=7)).isoformat())


@dataclass
class Fault:
    status: int
    times: int
    method: str | None
    path_contains: str | None
    retry_after: str | None


class BoxFakeState:
    """The store. Every mutation holds ``lock``; tests may call these helpers directly."""

    def __init__(self, *, part_size: int = BOX_PART_SIZE, min_chunked_size: int = BOX_MIN_CHUNKED_SIZE,
                 max_page: int = 1000):
        self.lock = threading.RLock()
        self.part_size = part_size
        self.min_chunked_size = min_chunked_size
        self.max_page = max_page
        self.tokens: set[str] = set()
        self.apps: dict[str, str] = {}  # client_id -> client_secret for client-credentials grants
        self.jwt_keys: dict[str, tuple[str, str]] = {}  # client_id -> (public key id, PEM public key) for JWT apps
        self.policies: dict[str, str] = {}  # retention policy id -> name
        self.assignments: dict[str, dict] = {}
        self.folders: dict[str, Folder] = {"0": Folder("0", "All Files", None)}
        self.files: dict[str, File] = {}
        self.sessions: dict[str, Session] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) log, for tests
        self._ids = itertools.count(1_000_000_000 + secrets.randbelow(1_000_000))

    def new_id(self) -> str:
        return str(next(self._ids))

    # -- test helpers -----------------------------------------------------------
    def add_token(self, token: str | None = None) -> str:
        token = token or secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return token

    def inject(self, status: int, *, times: int = 1, method: str | None = None, path_contains: str | None = None,
               retry_after: str | None = None) -> None:
        """Answer the next ``times`` matching requests with ``status`` (e.g. 429 with ``Retry-After``)."""
        with self.lock:
            self.faults.append(Fault(status, times, method, path_contains, retry_after))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (fault.method in (None, method)) and (fault.path_contains is None or fault.path_contains in path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def children(self, folder_id: str) -> list[Folder | File]:
        with self.lock:
            items: list[Folder | File] = [f for f in self.folders.values() if f.parent_id == folder_id]
            items += [f for f in self.files.values() if f.parent_id == folder_id and not f.trashed]
        return sorted(items, key=lambda item: int(item.id))

    def conflict(self, folder_id: str, name: str) -> Folder | File | None:
        lowered = name.casefold()
        return next((item for item in self.children(folder_id) if item.name.casefold() == lowered), None)

    def folder(self, folder_id: str) -> Folder:
        with self.lock:
            if folder_id not in self.folders:
                raise not_found("folder", folder_id)
            return self.folders[folder_id]

    def file(self, file_id: str) -> File:
        with self.lock:
            f = self.files.get(file_id)
            if f is None:
                raise not_found("file", file_id)
            if f.trashed:
                raise BoxError(404, "trashed", "Item is trashed")
            return f

    def create_folder(self, name: str, parent_id: str = "0") -> str:
        _check_name(name)
        with self.lock:
            self.folder(parent_id)
            existing = self.conflict(parent_id, name)
            if existing is not None:
                raise BoxError(409, "item_name_in_use", "Item with the same name already exists",
                               context_info={"conflicts": [mini(existing)]})
            folder = Folder(self.new_id(), name, parent_id)
            self.folders[folder.id] = folder
            return folder.id

    def preflight(self, folder_id: str, name: str) -> None:
        _check_name(name)
        self.folder(folder_id)
        existing = self.conflict(folder_id, name)
        if existing is not None:
            conflicts: Any = mini(existing) if isinstance(existing, File) else [mini(existing)]
            raise BoxError(409, "item_name_in_use", "Item with the same name already exists",
                           context_info={"conflicts": conflicts})

    def write_file(self, folder_id: str, name: str, content: bytes) -> File:
        with self.lock:
            self.preflight(folder_id, name)
            f = File(self.new_id(), name, folder_id, content, self.new_id())
            self.files[f.id] = f
            return f

    def write_version(self, file_id: str, content: bytes, name: str | None = None) -> File:
        with self.lock:
            f = self.file(file_id)
            if name and name != f.name:
                self.preflight(f.parent_id, name)
                f.name = name
            f.content, f.version_id = content, self.new_id()
            f.modified_at, f.sequence_id = _now(), f.sequence_id + 1
            return f


def _check_name(name: str) -> None:
    # What Box refuses (rclone's Box encoding agrees): slashes, control characters, trailing spaces, . and ..
    if not name or len(name) > 255 or name in (".", "..") or name != name.rstrip(" ") or _INVALID_NAME.search(name):
        raise BoxError(400, "item_name_invalid", "Item name invalid")


def mini(item: Folder | File) -> dict[str, Any]:
    if isinstance(item, Folder):
        return {"type": "folder", "id": item.id, "sequence_id": str(item.sequence_id),
                "etag": str(item.sequence_id), "name": item.name}
    return {"type": "file", "id": item.id, "sequence_id": str(item.sequence_id), "etag": str(item.sequence_id),
            "name": item.name, "sha1": item.sha1,
            "file_version": {"type": "file_version", "id": item.version_id, "sha1": item.sha1}}


class BoxFakeServer:
    """The HTTP front of ``BoxFakeState`` in a thread; ``stop``/``restart`` keep the data and the port."""

    def __init__(self, *, port: int | None = None, **state_options: Any):
        self.state = BoxFakeState(**state_options)
        self.token = self.state.add_token()
        self.port = port or free_port()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self, *, timeout: float = 10.0) -> BoxFakeServer:
        if self._httpd is not None:
            return self
        server = self

        class Handler(_Handler):
            fake = server

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"box-fake-{self.port}", daemon=True)
        self._thread.start()
        wait_for_port(self.port, timeout=timeout)
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._conns_lock:  # a stopped server must not keep answering on open connections
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._conns.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def restart(self, *, timeout: float = 10.0) -> BoxFakeServer:
        self.stop()
        return self.start(timeout=timeout)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(conn)


class _Handler(BaseHTTPRequestHandler):
    fake: BoxFakeServer
    server_version = "BoxFake/1.0"
    _raw = b""

    def setup(self) -> None:
        super().setup()
        self.fake.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    # -- plumbing ------------------------------------------------------------------
    @property
    def st(self) -> BoxFakeState:
        return self.fake.state

    def _body(self) -> bytes:
        return self._raw

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self) -> dict[str, Any]:
        try:
            data = json.loads(self._body() or b"{}")
        except ValueError:
            raise BoxError(400, "bad_request", "Invalid JSON body") from None
        if not isinstance(data, dict):
            raise BoxError(400, "bad_request", "Expected a JSON object")
        return data

    def _send(self, status: int, payload: Any = None, *, headers: dict[str, str] | None = None,
              raw: bytes | None = None, content_type: str = "application/json") -> None:
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.st.lock:
            self.st.requests.append((method, path))
        try:
            self._raw = self._read_body()  # always drain, so an early error never breaks the client's send
            fault = self.st.take_fault(method, path)
            if fault is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                codes = {429: ("rate_limit_exceeded", "Request rate limit exceeded, please try again later"),
                         503: ("unavailable", "Unavailable")}
                code, message = codes.get(fault.status, ("internal_server_error", "Internal Server Error"))
                raise BoxError(fault.status, code, message, headers=headers)
            for route_method, pattern, handler, authed in ROUTES:
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    if authed:
                        self._authenticate()
                    handler(self, query, *match.groups())
                    return
            if any(p.fullmatch(path) for _, p, _, _ in ROUTES):
                raise BoxError(405, "method_not_allowed", "Method Not Allowed")
            raise BoxError(404, "not_found", "Not Found")
        except BoxError as exc:
            if exc.empty:
                self._send(exc.status, headers=exc.headers)
            else:
                self._send(exc.status, exc.body(), headers=exc.headers)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _authenticate(self) -> None:
        header = self.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if token not in self.st.tokens:
            raise BoxError(401, "unauthorized", "Unauthorized", empty=True, headers={
                "WWW-Authenticate": 'Bearer realm="Service", error="invalid_token", '
                                    'error_description="The access token provided is invalid."'})

    # -- representations -----------------------------------------------------------
    def _file_full(self, f: File) -> dict[str, Any]:
        parent = self.st.folders[f.parent_id]
        return {**mini(f), "description": "", "size": len(f.content), "created_at": f.created_at,
                "modified_at": f.modified_at, "content_created_at": f.created_at,
                "content_modified_at": f.modified_at, "trashed_at": None, "purged_at": None,
                "created_by": USER, "modified_by": USER, "owned_by": USER, "shared_link": None,
                "parent": mini(parent), "item_status": "trashed" if f.trashed else "active",
                "path_collection": {"total_count": len(self._path(parent)), "entries": self._path(parent)}}

    def _folder_full(self, folder: Folder) -> dict[str, Any]:
        parent = self.st.folders.get(folder.parent_id) if folder.parent_id else None
        return {**mini(folder), "created_at": folder.created_at, "modified_at": folder.created_at,
                "description": "", "size": 0, "created_by": USER, "modified_by": USER, "owned_by": USER,
                "parent": mini(parent) if parent else None, "item_status": "active",
                "path_collection": {"total_count": len(self._path(parent)), "entries": self._path(parent)}}

    def _path(self, folder: Folder | None) -> list[dict]:
        chain = []
        while folder is not None:
            chain.append(mini(folder))
            folder = self.st.folders.get(folder.parent_id) if folder.parent_id else None
        return chain[::-1]

    def _item(self, item: Folder | File, fields: str | None) -> dict[str, Any]:
        """Listing entries: the mini representation plus any requested ``fields`` (Box's rule)."""
        base = mini(item)
        if not fields:
            return base
        full = self._file_full(item) if isinstance(item, File) else self._folder_full(item)
        wanted = {f.strip() for f in fields.split(",") if f.strip()}
        return {**base, **{k: v for k, v in full.items() if k in wanted}}

    def _session_json(self, s: Session) -> dict[str, Any]:
        url = f"{self.fake.url}/api/2.0/files/upload_sessions/{s.id}"
        return {"type": "upload_session", "id": s.id, "session_expires_at": s.expires_at,
                "part_size": s.part_size, "total_parts": max(1, math.ceil(s.file_size / s.part_size)),
                "num_parts_processed": len(s.parts),
                "session_endpoints": {"upload_part": url, "commit": f"{url}/commit", "abort": url,
                                      "list_parts": f"{url}/parts", "status": url, "log_event": f"{url}/log"}}

    # -- token ---------------------------------------------------------------------------
    def oauth_token(self, query: dict) -> None:
        form = {k: v[-1] for k, v in parse_qs(self._body().decode()).items()}
        if form.get("grant_type") not in ("client_credentials", JWT_GRANT):
            self._send(400, {"error": "invalid_request", "error_description": "Invalid grant_type parameter"})
            return
        if self.st.apps.get(form.get("client_id", "")) != form.get("client_secret") or not form.get("client_id"):
            self._send(400, {"error": "invalid_client", "error_description": "The client credentials are invalid"})
            return
        if form["grant_type"] == JWT_GRANT:
            problem = self._jwt_problem(form.get("assertion", ""), form["client_id"])
            if problem:
                self._send(400, {"error": "invalid_grant", "error_description": problem})
                return
        token = self.st.add_token()
        self._send(200, {"access_token": token, "expires_in": 3600, "token_type": "bearer",
                         "restricted_to": [], "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})

    def _jwt_problem(self, assertion: str, client_id: str) -> str:
        """Box's checks on a JWT assertion (RS256 signed with the app's key, its kid, audience, issuer,
        subject type, a short expiry), as its error descriptions say them; '' when it is good."""
        import jwt

        if client_id not in self.st.jwt_keys:
            return "Please check the 'kid' header parameter"
        kid, public_pem = self.st.jwt_keys[client_id]
        try:
            if jwt.get_unverified_header(assertion).get("kid") != kid:
                return "Please check the 'kid' header parameter"
            claims = jwt.decode(assertion, public_pem, algorithms=["RS256", "RS384", "RS512"],
                                audience=BOX_TOKEN_AUDIENCE, issuer=client_id,
                                options={"require": ["exp", "jti", "sub", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            return "Current date/time MUST be before the expiration date/time listed in the 'exp' claim"
        except jwt.InvalidTokenError:
            return ("Signature verification error. The public key identified by 'kid' must correspond to the "
                    "private key used for signing")
        if claims.get("box_sub_type") not in ("enterprise", "user"):
            return "Please check the 'box_sub_type' claim"
        if claims["exp"] - time.time() > 60:
            return "Please check the 'exp' claim: at most 60 seconds ahead"
        return ""

    # -- folders -------------------------------------------------------------------------
    def get_folder(self, query: dict, folder_id: str) -> None:
        with self.st.lock:
            self._send(200, self._folder_full(self.st.folder(folder_id)))

    def get_folder_items(self, query: dict, folder_id: str) -> None:
        self.st.folder(folder_id)
        try:
            limit = min(int(query.get("limit", 100)), self.st.max_page)
        except ValueError:
            raise BoxError(400, "invalid_limit", "Limit is not a valid number") from None
        items = self.st.children(folder_id)
        fields = query.get("fields")
        with self.st.lock:
            if query.get("usemarker", "").lower() == "true":  # the SDK sends "True"
                start = 0
                if query.get("marker"):
                    try:
                        start = int(base64.urlsafe_b64decode(query["marker"]).decode())
                    except ValueError:
                        raise BoxError(400, "invalid_parameter", "Invalid marker") from None
                page = items[start:start + limit]
                nxt = start + limit
                marker = base64.urlsafe_b64encode(str(nxt).encode()).decode() if nxt < len(items) else None
                self._send(200, {"entries": [self._item(i, fields) for i in page], "limit": limit,
                                 "next_marker": marker, "prev_marker": None})
                return
            try:
                offset = int(query.get("offset", 0))
            except ValueError:
                raise BoxError(400, "invalid_offset", "Offset is not a valid number") from None
            page = items[offset:offset + limit]
            self._send(200, {"total_count": len(items), "entries": [self._item(i, fields) for i in page],
                             "offset": offset, "limit": limit,
                             "order": [{"by": "type", "direction": "ASC"}, {"by": "name", "direction": "ASC"}]})

    def post_folder(self, query: dict) -> None:
        data = self._json()
        parent_id = str((data.get("parent") or {}).get("id", ""))
        folder_id = self.st.create_folder(str(data.get("name", "")), parent_id)
        with self.st.lock:
            self._send(201, self._folder_full(self.st.folders[folder_id]))

    # -- files ---------------------------------------------------------------------------
    def _multipart(self) -> tuple[dict[str, Any], bytes]:
        ctype = self.headers.get("Content-Type", "")
        match = re.search(r'boundary="?([^";]+)"?', ctype)
        if not ctype.startswith("multipart/form-data") or not match:
            raise BoxError(400, "bad_request", "Expected multipart/form-data")
        boundary = b"--" + match.group(1).encode()
        attributes: dict[str, Any] | None = None
        content: bytes | None = None
        for chunk in self._body().split(boundary)[1:]:
            if chunk.startswith(b"--"):
                break
            head, _, value = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
            value = value.removesuffix(b"\r\n")
            name = re.search(rb'name="([^"]*)"', head)
            if name and name.group(1) == b"attributes":
                if content is not None:
                    raise BoxError(400, "metadata_after_file_contents",
                                   "Metadata is included after file contents in a file upload request.")
                attributes = json.loads(value)
            elif name and name.group(1) == b"file":
                content = value
        if attributes is None or content is None:
            raise BoxError(400, "bad_request", "attributes and file parts are required")
        return attributes, content

    def _check_md5(self, content: bytes) -> None:
        expected = self.headers.get("Content-MD5")
        if expected and expected.lower() != hashlib.sha1(content).hexdigest():  # noqa: S324
            raise BoxError(400, "bad_digest", "The specified content-md5 did not match what we received")

    def _files_response(self, status: int, f: File) -> None:
        self._send(status, {"total_count": 1, "entries": [self._file_full(f)]})

    def upload_file(self, query: dict) -> None:
        attributes, content = self._multipart()
        self._check_md5(content)
        parent_id = str((attributes.get("parent") or {}).get("id", ""))
        with self.st.lock:
            self._files_response(201, self.st.write_file(parent_id, str(attributes.get("name", "")), content))

    def upload_version(self, query: dict, file_id: str) -> None:
        attributes, content = self._multipart()
        self._check_md5(content)
        with self.st.lock:
            self._files_response(200, self.st.write_version(file_id, content, attributes.get("name")))

    def get_file(self, query: dict, file_id: str) -> None:
        with self.st.lock:
            self._send(200, self._file_full(self.st.file(file_id)))

    def get_content(self, query: dict, file_id: str) -> None:
        with self.st.lock:
            f = self.st.file(file_id)
        self._send(302, headers={"Location": f"{self.fake.url}/fake-dl/{f.id}/{f.version_id}"})

    def download(self, query: dict, file_id: str, version_id: str) -> None:
        with self.st.lock:
            f = self.st.files.get(file_id)
            if f is None or f.version_id != version_id or f.trashed:
                raise BoxError(404, "not_found", "Not Found")
            content = f.content
        self._send(200, raw=content, content_type="application/octet-stream")

    def delete_file(self, query: dict, file_id: str) -> None:
        with self.st.lock:
            f = self.st.file(file_id)
            f.trashed = True
        self._send(204)

    def purge_file(self, query: dict, file_id: str) -> None:
        with self.st.lock:
            f = self.st.files.get(file_id)
            if f is None:
                raise not_found("file", file_id)
            if not f.trashed:
                raise BoxError(404, "not_trashed", "Item is not trashed")
            del self.st.files[file_id]
        self._send(204)

    # -- chunked upload sessions ------------------------------------------------------
    def _new_session(self, file_size: Any, folder_id: str | None, name: str | None, file_id: str | None) -> None:
        if not isinstance(file_size, int) or file_size < 0:
            raise BoxError(400, "bad_request", "file_size is required")
        if file_size < self.st.min_chunked_size:
            raise BoxError(400, "file_size_too_small", f"File size {file_size} less than minimum allowed for "
                           f"this API: {self.st.min_chunked_size}")
        with self.st.lock:
            if file_id is None:
                self.st.preflight(str(folder_id), str(name or ""))
            session = Session(secrets.token_hex(16).upper(), file_size, self.st.part_size, folder_id, name, file_id)
            self.st.sessions[session.id] = session
            self._send(201, self._session_json(session))

    def create_session(self, query: dict) -> None:
        data = self._json()
        self._new_session(data.get("file_size"), str(data.get("folder_id", "")), data.get("file_name"), None)

    def create_version_session(self, query: dict, file_id: str) -> None:
        data = self._json()
        self.st.file(file_id)
        self._new_session(data.get("file_size"), None, data.get("file_name"), file_id)

    def _session(self, session_id: str) -> Session:
        with self.st.lock:
            if session_id not in self.st.sessions:
                raise not_found("upload_session", session_id)
            return self.st.sessions[session_id]

    def upload_part(self, query: dict, session_id: str) -> None:
        s = self._session(session_id)
        data = self._body()
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", self.headers.get("Content-Range", "").strip())
        if not match:
            raise BoxError(400, "bad_request", "Content-Range header is required")
        start, end, total = map(int, match.groups())
        last = start + s.part_size >= s.file_size
        if (total != s.file_size or start % s.part_size or end < start or end >= s.file_size
                or end - start + 1 != len(data) or (not last and len(data) != s.part_size)):
            raise BoxError(416, "requested_range_not_satisfiable",
                           "The content range does not match a specified range for the session")
        digest = self.headers.get("Digest", "")
        sha1 = hashlib.sha1(data).digest()  # noqa: S324
        if digest != "sha=" + base64.b64encode(sha1).decode():
            raise BoxError(400, "digest_mismatch", "Part digest was incorrect.")
        with self.st.lock:
            if start in s.parts and s.parts[start][1] != data:
                raise BoxError(409, "range_overlaps_existing_part", "Part overlaps with an existing part")
            part_id = s.parts[start][0] if start in s.parts else secrets.token_hex(4).upper()
            s.parts[start] = (part_id, data)
        self._send(200, {"part": {"part_id": part_id, "offset": start, "size": len(data), "sha1": sha1.hex()}})

    def list_parts(self, query: dict, session_id: str) -> None:
        s = self._session(session_id)
        with self.st.lock:
            entries = [{"part_id": pid, "offset": off, "size": len(data),
                        "sha1": hashlib.sha1(data).hexdigest()}  # noqa: S324
                       for off, (pid, data) in sorted(s.parts.items())]
        self._send(200, {"entries": entries, "total_count": len(entries), "limit": 1000, "offset": 0})

    def session_status(self, query: dict, session_id: str) -> None:
        self._send(200, self._session_json(self._session(session_id)))

    def commit(self, query: dict, session_id: str) -> None:
        s = self._session(session_id)
        listed = self._json().get("parts") or []
        with self.st.lock:
            try:
                chosen = [s.parts[int(p["offset"])] for p in listed]
                ok = all(pid == p["part_id"] for (pid, _), p in zip(chosen, listed, strict=True))
            except (KeyError, TypeError, ValueError):
                ok = False
            content = b"".join(data for _, data in chosen) if ok else b""
            if not ok or len(content) != s.file_size:
                raise BoxError(400, "bad_request", "The parts listed do not make up the file")
            actual = base64.b64encode(hashlib.sha1(content).digest()).decode()  # noqa: S324
            expected = self.headers.get("Digest", "").removeprefix("sha=")
            if actual != expected:
                raise BoxError(400, "digest_mismatch", f"File digest was incorrect. Actual: {actual} "
                               f"Expected: {expected}")
            if s.file_id is not None:
                f = self.st.write_version(s.file_id, content, s.file_name)
            else:
                f = self.st.write_file(str(s.folder_id), str(s.file_name), content)
            del self.st.sessions[session_id]
            self._files_response(201, f)

    def abort(self, query: dict, session_id: str) -> None:
        self._session(session_id)
        with self.st.lock:
            self.st.sessions.pop(session_id, None)
        self._send(204)

    # -- retention ------------------------------------------------------------------------
    def assign_retention(self, query: dict) -> None:
        data = self._json()
        policy_id = str(data.get("policy_id", ""))
        target = data.get("assign_to") or {}
        with self.st.lock:
            if policy_id not in self.st.policies:
                raise not_found("retention_policy", policy_id)
            if target.get("type") == "folder":
                self.st.folder(str(target.get("id")))
            for existing in self.st.assignments.values():
                if existing["retention_policy"]["id"] == policy_id and existing["assigned_to"] == target:
                    raise BoxError(409, "conflict", "A resource with this value already exists")
            assignment = {"type": "retention_policy_assignment", "id": self.st.new_id(),
                          "retention_policy": {"type": "retention_policy", "id": policy_id,
                                               "policy_name": self.st.policies[policy_id]},
                          "assigned_to": {"type": target.get("type"), "id": target.get("id")},
                          "filter_fields": [], "assigned_by": USER, "assigned_at": _now(),
                          "start_date_field": "upload_date"}
            self.st.assignments[assignment["id"]] = assignment
        self._send(201, assignment)


_ID = r"(\d+)"
_SID = r"([0-9A-Fa-f]+)"
ROUTES: list[tuple[str, re.Pattern[str], Any, bool]] = [
    (m, re.compile(p), h, a) for m, p, h, a in [
        ("POST", "/oauth2/token", _Handler.oauth_token, False),
        ("GET", f"/2.0/folders/{_ID}", _Handler.get_folder, True),
        ("GET", f"/2.0/folders/{_ID}/items", _Handler.get_folder_items, True),
        ("POST", "/2.0/folders", _Handler.post_folder, True),
        ("GET", f"/2.0/files/{_ID}", _Handler.get_file, True),
        ("DELETE", f"/2.0/files/{_ID}", _Handler.delete_file, True),
        ("GET", f"/2.0/files/{_ID}/content", _Handler.get_content, True),
        ("DELETE", f"/2.0/files/{_ID}/trash", _Handler.purge_file, True),
        ("GET", f"/fake-dl/{_ID}/{_ID}", _Handler.download, False),
        ("POST", "/api/2.0/files/content", _Handler.upload_file, True),
        ("POST", f"/api/2.0/files/{_ID}/content", _Handler.upload_version, True),
        ("POST", "/api/2.0/files/upload_sessions", _Handler.create_session, True),
        ("POST", f"/api/2.0/files/{_ID}/upload_sessions", _Handler.create_version_session, True),
        ("PUT", f"/api/2.0/files/upload_sessions/{_SID}", _Handler.upload_part, True),
        ("GET", f"/api/2.0/files/upload_sessions/{_SID}", _Handler.session_status, True),
        ("DELETE", f"/api/2.0/files/upload_sessions/{_SID}", _Handler.abort, True),
        ("GET", f"/api/2.0/files/upload_sessions/{_SID}/parts", _Handler.list_parts, True),
        ("POST", f"/api/2.0/files/upload_sessions/{_SID}/commit", _Handler.commit, True),
        ("POST", "/2.0/retention_policy_assignments", _Handler.assign_retention, True),
    ]
]
