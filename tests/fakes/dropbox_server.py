"""An in-memory fake of the Dropbox API v2, served over HTTPS from a thread.

Only the routes ``providers.backends.dropbox`` uses, with the wire shapes of Dropbox's HTTP
reference: RPC routes take and return JSON bodies; content routes take their argument as JSON in
the ``Dropbox-API-Arg`` header (downloads answer in ``Dropbox-API-Result``). Route errors are 409
``{"error_summary": "path/not_found/..", "error": {".tag": ...}}``, bad tokens 401, unknown path
roots 422, throttling 429 with ``Retry-After``. Every content call checks an optional
``content_hash`` of the bytes sent in that call; files report the whole-file ``content_hash``
(sha256 over the concatenated sha256 digests of 4 MiB blocks).

One server answers for both the api and the content host (and ``/oauth2/token`` for refresh
tokens). State survives ``restart()``; ``inject()`` plays throttling, 5xx, lost responses and
corruption; ``calls`` records every request's route, headers and argument.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import secrets
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.dropbox_routes import (
    CONTENT_ROUTES,
    ROUTES,
    Entry,
    Reply,
    Session,
    WriteFailure,
    check_path,
    lookup_error,
)

ACCESS_TOKEN_TTL = 14400


def make_test_certificate(directory: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate for 127.0.0.1 (never committed), as (cert, key) PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-dropbox.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "fake-dropbox.crt", directory / "fake-dropbox.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Call:
    route: str
    headers: dict[str, str]
    arg: Any


@dataclass
class Fault:
    route: str
    status: int
    times: int
    retry_after: int | None
    after: bool
    corrupt: str | None


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:] if data else b"\0"


class FakeDropbox:
    """The state and routes. ``start()`` serves them on ``https://127.0.0.1:<port>``."""

    def __init__(self, cert_file: Path, key_file: Path, *, port: int = 0, page_size: int = 10):
        self.cert_file, self.key_file, self.port, self.page_size = Path(cert_file), Path(key_file), port, page_size
        self.lock = threading.RLock()
        self.user_tokens: dict[str, str] = {}            # access token -> account id
        self.team_tokens: dict[str, set[str]] = {}       # access token -> team member ids
        self.refresh_tokens: dict[str, tuple[str, str, str]] = {}  # -> (app key, app secret, account id)
        self.namespaces: set[str] = set()
        self.quota_bytes: int | None = None  # per account/namespace; None: unlimited
        self.calls: list[Call] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counter = itertools.count(1)
        self.reset()

    # -- configuration -----------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.spaces: dict[str, dict[str, Entry]] = {}
            self.sessions: dict[str, Session] = {}
            self.cursors: dict[str, list[dict[str, Any]]] = {}
            self.links: dict[tuple[str, str], dict[str, Any]] = {}
            self.faults: list[Fault] = []
            self.quota_bytes = None
            self.calls.clear()

    def add_user_token(self, token: str, account_id: str = "dbid:AAuser") -> None:
        self.user_tokens[token] = account_id

    def add_team_token(self, token: str, members: set[str], namespaces: set[str] = frozenset()) -> None:
        self.team_tokens[token] = set(members)
        self.namespaces |= set(namespaces)

    def add_refresh_token(self, refresh_token: str, app_key: str, app_secret: str,
                          account_id: str = "dbid:AAuser") -> None:
        """Refreshing it issues short-lived access tokens to the same account as ``add_user_token``."""
        self.refresh_tokens[refresh_token] = (app_key, app_secret, account_id)

    def inject(self, route: str, status: int = 0, *, times: int = 1, retry_after: int | None = None,
               after: bool = False, corrupt: str | None = None) -> None:
        """Misbehave on the next ``times`` calls of ``route`` (``"*"``: any route).

        ``status``: answer it (429 carries ``retry_after``); with ``after`` the call runs first, like a
        response lost on its way back. ``corrupt``: flip a byte of the ``"request"`` body (as if damaged
        in transit), of what is ``"stored"`` (the per-call content_hash check is skipped, as if the
        server had lost it), or of the ``"response"`` body of a download.
        """
        assert corrupt in (None, "request", "stored", "response")
        with self.lock:
            self.faults.append(Fault(route, status, times, retry_after, after, corrupt))

    def calls_to(self, route: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.route == route]

    # -- lifecycle -----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeDropbox:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        self._server = _Server(("127.0.0.1", self.port), self, ctx)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-dropbox:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread = None, None

    def restart(self) -> FakeDropbox:
        self.stop()
        return self.start()

    # -- request handling --------------------------------------------------
    def handle(self, route: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str], bytes]:
        """Return (status, json-or-text body, headers, binary body)."""
        with self.lock:
            try:
                arg = self._arg(route, headers, body)
                self.calls.append(Call(route, headers, arg))
                fault = self._take_fault(route)
                if fault is not None and fault.status and not fault.after:
                    raise self._fault_reply(fault)
                if fault is not None and fault.corrupt in ("request", "stored"):
                    body = _flip(body)
                    if fault.corrupt == "stored":
                        arg = {k: v for k, v in arg.items() if k != "content_hash"}
                if route == "/oauth2/token":
                    return 200, self._token(arg), {}, b""
                space = self._space(headers)
                handler = ROUTES.get(route)
                if handler is None:
                    raise Reply(404, "Unknown API function")
                result = handler(self, space, arg, body)
                if fault is not None and fault.status:
                    raise self._fault_reply(fault)
            except Reply as r:
                return r.status, r.body, r.headers, b""
            if isinstance(result, tuple):  # a download: (metadata, bytes)
                md, data = result
                if fault is not None and fault.corrupt == "response":
                    data = _flip(data)
                return 200, None, {"Dropbox-API-Result": json.dumps(md)}, data
            return 200, result, {}, b""

    def _arg(self, route: str, headers: dict[str, str], body: bytes) -> Any:
        if route == "/oauth2/token":
            return {k: v[0] for k, v in parse_qs(body.decode()).items()}
        raw = headers.get("dropbox-api-arg") if route in CONTENT_ROUTES else body.decode() or "null"
        if raw is None:
            raise Reply(400, "Error in call to API function: missing Dropbox-API-Arg header")
        try:
            return json.loads(raw)
        except ValueError:
            raise Reply(400, "Error in call to API function: could not decode input as JSON") from None

    def _take_fault(self, route: str) -> Fault | None:
        for fault in self.faults:
            if fault.route in (route, "*"):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _fault_reply(fault: Fault) -> Reply:
        if fault.status == 429:
            retry_after = 1 if fault.retry_after is None else fault.retry_after
            return Reply(429, {"error_summary": "too_many_requests/..",
                               "error": {"reason": {".tag": "too_many_requests"}, "retry_after": retry_after}},
                         {"Retry-After": str(retry_after)})
        return Reply(fault.status, "Internal Server Error" if fault.status >= 500 else "Error")

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        known = self.refresh_tokens.get(form.get("refresh_token", ""))
        if form.get("grant_type") != "refresh_token" or known is None or known[:2] != (
                form.get("client_id"), form.get("client_secret")):
            raise Reply(400, {"error": "invalid_grant", "error_description": "refresh token is malformed"})
        token = "sl." + secrets.token_urlsafe(24)
        self.user_tokens[token] = known[2]
        return {"access_token": token, "token_type": "bearer", "expires_in": ACCESS_TOKEN_TTL}

    def _space(self, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        select_user = headers.get("dropbox-api-select-user")
        if token in self.user_tokens:
            if select_user:
                raise Reply(400, "Dropbox-API-Select-User is only valid with a team access token")
            owner = "user:" + self.user_tokens[token]
        elif token in self.team_tokens:
            if not select_user:
                raise Reply(400, "This API function operates on a single Dropbox account, but the OAuth 2 "
                                 "access token you provided is for an entire Dropbox Business team. Set the "
                                 "Dropbox-API-Select-User header.")
            if select_user not in self.team_tokens[token]:
                raise Reply(401, {"error_summary": "invalid_select_user/..", "error": {".tag": "invalid_select_user"}})
            owner = "member:" + select_user
        else:
            raise Reply(401, {"error_summary": "invalid_access_token/..", "error": {".tag": "invalid_access_token"}})
        root = headers.get("dropbox-api-path-root")
        if root:
            try:
                parsed = json.loads(root)
                tag = parsed[".tag"]
                ns = parsed.get(tag) if tag in ("root", "namespace_id") else None
            except (ValueError, KeyError, TypeError):
                raise Reply(400, "Invalid Dropbox-API-Path-Root header") from None
            if tag != "home":
                if token not in self.team_tokens or ns not in self.namespaces:
                    raise Reply(422, {"error_summary": "no_permission/..", "error": {".tag": "no_permission"}})
                return "ns:" + ns
        return owner

    # -- storage helpers ---------------------------------------------------
    def entries(self, space: str) -> dict[str, Entry]:
        return self.spaces.setdefault(space, {})

    def new_rev(self) -> str:
        return f"{next(self._counter):09x}{secrets.token_hex(3)}"

    def commit(self, space: str, path: str, data: bytes, commit: dict[str, Any]) -> Entry:
        """Write ``data`` at ``path`` per CommitInfo; raise a WriteError (the caller wraps it)."""
        entries = self.entries(space)
        path = self._writable(entries, path)
        existing = entries.get(path.lower())
        mode = commit.get("mode", "add")
        mode_tag = mode if isinstance(mode, str) else mode.get(".tag")
        if existing is not None and existing.folder:
            raise WriteFailure("conflict", "folder")
        changed = existing is not None and existing.data != data
        if changed and (mode_tag == "add" or (mode_tag == "update" and mode.get("update") != existing.rev)):
            raise WriteFailure("conflict", "file")
        if self.quota_bytes is not None:
            used = sum(len(e.data) for e in entries.values())
            if used - len(existing.data if existing else b"") + len(data) > self.quota_bytes:
                raise WriteFailure("insufficient_space")
        if existing is not None and existing.data == data:
            return existing
        self._make_parents(entries, path)
        display = existing.path_display if existing else path
        entry = Entry(display, existing.id if existing else self.new_id(), data=bytes(data), rev=self.new_rev(),
                      client_modified=commit.get("client_modified"))
        entries[path.lower()] = entry
        return entry

    def make_folder(self, space: str, path: str) -> Entry:
        entries = self.entries(space)
        path = self._writable(entries, path)
        existing = entries.get(path.lower())
        if existing is not None:
            raise WriteFailure("conflict", "folder" if existing.folder else "file")
        self._make_parents(entries, path)
        entries[path.lower()] = Entry(path, self.new_id(), folder=True)
        return entries[path.lower()]

    @staticmethod
    def _writable(entries: dict[str, Entry], path: Any) -> str:
        path = check_path(path, WriteFailure)
        parts = path.split("/")[1:]
        for i in range(1, len(parts)):
            ancestor = entries.get("/" + "/".join(parts[:i]).lower())
            if ancestor is not None and not ancestor.folder:
                raise WriteFailure("conflict", "file_ancestor")
        return path

    def _make_parents(self, entries: dict[str, Entry], path: str) -> None:
        parts = path.split("/")[1:]
        for i in range(1, len(parts)):
            folder = "/" + "/".join(parts[:i])
            entries.setdefault(folder.lower(), Entry(folder, self.new_id(), folder=True))

    @staticmethod
    def new_id() -> str:
        return "id:" + secrets.token_urlsafe(16)

    def lookup(self, space: str, path: str, outer: str) -> Entry:
        path = check_path(path, lambda *_: lookup_error(outer, "malformed_path"))
        entry = self.entries(space).get(path.lower())
        if entry is None:
            raise lookup_error(outer, "not_found")
        return entry


# -- HTTP plumbing -----------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(30)
        self.request.do_handshake()  # here, in the connection's thread, not in the accept loop
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra, data = self.server.fake.handle(self.path.split("?", 1)[0], headers, body)
        if data or "Dropbox-API-Result" in extra:
            out, ctype = data, "application/octet-stream"
        elif isinstance(payload, str):
            out, ctype = payload.encode(), "text/plain; charset=utf-8"
        else:
            out, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(out)))
        self.send_header("X-Dropbox-Request-Id", secrets.token_hex(8))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(out)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeDropbox, ctx: ssl.SSLContext):
        super().__init__(address, _Handler)
        self.fake = fake
        self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop kept-alive connections too, so a stopped server really is unreachable."""
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up or reject the certificate are not the fake's problem
