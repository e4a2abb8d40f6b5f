"""A small HTTP/1.1-aware fault proxy on loopback, for putting real SDK clients in front of real servers.

Point a Provider's endpoint at ``FaultProxy.url``; every request is parsed (head, then a Content-Length
or chunked body) and relayed to the upstream server on a connection of its own, keep-alive included.
Faults are switched at runtime with ``set(...)`` and drawn from a seeded RNG, so a test is repeatable:

- ``latency``: seconds added before each request is forwarded;
- ``error_rate``: answer that fraction of requests with 500, 503 or 503 + S3 ``SlowDown`` (``errors``);
- ``drop_rate``: cut the connection (RST) half way through the request body (right after the head for a
  chunked body), or half way through the response body when the request has none;
- ``flip_rate`` / ``flip_max``: flip one byte of the request body after the headers, so the provider's
  own checksum check has something to catch;
- ``upload_bps``: trickle request bodies at that many bytes a second (a slow network: a kill lands mid-body);
- ``hold_response``: forward the request, let the server store it, then hold its response that many
  seconds (a kill lands between the upload and the client hearing about it).

``match(method, path)`` limits which requests any of these apply to (all by default). ``stats`` counts what
happened and ``wait_for(predicate)`` blocks until it holds, so tests never sleep blindly.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

CHUNK = 64 * 1024
ERROR_BODIES = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("ServiceUnavailable", "Please reduce your request rate."),
    "slowdown": ("SlowDown", "Please reduce your request rate."),
}
REASONS = {500: "Internal Server Error", 503: "Service Unavailable"}


class ProxyError(Exception):
    """The client or the upstream broke the HTTP exchange."""


@dataclass
class Faults:
    latency: float = 0.0
    error_rate: float = 0.0
    errors: tuple = (500, 503, "slowdown")
    drop_rate: float = 0.0
    flip_rate: float = 0.0
    flip_max: int | None = None
    upload_bps: int | None = None
    hold_response: float = 0.0
    match: Callable[[str, str], bool] = field(default=lambda method, path: True)


@dataclass
class Exchange:
    """One request as the proxy saw it."""

    method: str
    path: str
    fault: str = ""  # "", "error:503", "slowdown", "drop", "flip"
    status: int | None = None  # what the client was answered (None: cut)
    body_bytes: int = 0
    started: float = 0.0
    finished: float = 0.0


@dataclass
class Stats:
    requests: int = 0
    forwarded: int = 0
    errors: int = 0
    drops: int = 0
    flips: int = 0
    bodies_in_flight: int = 0  # request bodies being relayed right now
    held: int = 0  # responses being held right now
    exchanges: list[Exchange] = field(default_factory=list)


class _Conn:
    """A socket with a read buffer, for line-, length- and chunk-framed reads."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(CHUNK)
        if not data:
            return False
        self.buf += data
        return True

    def read_until(self, marker: bytes, limit: int = 256 * 1024) -> bytes | None:
        """Up to and including ``marker``; None on a clean EOF before any byte."""
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise ProxyError("header too long")
            if not self._fill():
                if self.buf:
                    raise ProxyError("connection closed mid-header")
                return None
        end = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def read_some(self, n: int) -> bytes:
        if not self.buf and not self._fill():
            raise ProxyError("connection closed mid-body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self) -> bytes:
        if not self.buf:
            self._fill()
        out, self.buf = self.buf, b""
        return out

    def closed_by_peer(self) -> bool:
        """True when the peer has closed an idle connection (checked before reusing it)."""
        if self.buf:
            return False
        readable, _, _ = select.select([self.sock], [], [], 0)
        if not readable:
            return False
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


@dataclass
class _Pair:
    upstream: _Conn | None = None


def _parse_head(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = raw.decode("latin-1").split("\r\n")
    return lines[0], [(k.strip(), v.strip()) for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)]


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _build_head(start: str, headers: list[tuple[str, str]]) -> bytes:
    return (start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")


def _reset(sock: socket.socket) -> None:
    """Close with RST, like a connection dropped by the network (not a polite FIN)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """``with FaultProxy(port) as proxy: ...``; ``proxy.set(error_rate=0.2)`` at any time."""

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1", seed: int = 0):
        self.upstream = (upstream_host, upstream_port)
        self.faults = Faults()
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._cond = threading.Condition()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._stopping = False
        self.port = 0

    # -- control ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, **changes: object) -> FaultProxy:
        """Replace the named faults (others keep their value); ``set()`` with ``reset=True`` clears all."""
        with self._cond:
            base = Faults() if changes.pop("reset", False) else self.faults
            unknown = set(changes) - {f.name for f in fields(Faults)}
            if unknown:
                raise TypeError(f"unknown faults: {sorted(unknown)}")
            self.faults = Faults(**{**{f.name: getattr(base, f.name) for f in fields(Faults)}, **changes})
        return self

    def clear(self) -> FaultProxy:
        return self.set(reset=True)

    def wait_for(self, predicate: Callable[[Stats], bool], timeout: float = 30.0) -> Stats:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.stats):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"proxy condition not met within {timeout}s: {self.stats}")
                self._cond.wait(min(left, 0.1))
            return self.stats

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._cond:
            socks = list(self._sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------
    def _spawn(self, target: Callable, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name="fault-proxy")
        self._threads = [x for x in self._threads if x.is_alive()]
        self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._spawn(self._serve, client)

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._cond:
            (self._sockets.add if add else self._sockets.discard)(sock)

    def _bump(self, **deltas: int) -> None:
        with self._cond:
            for name, d in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + d)
            self._cond.notify_all()

    def _draw(self, method: str, path: str, has_body: bool) -> tuple[Faults, str, int]:
        """The faults in force and this request's fate, drawn under the lock (one RNG, seeded)."""
        with self._cond:
            f = self.faults
            self.stats.requests += 1
            if not f.match(method, path):
                return Faults(), "", 0  # no latency, pacing or holding either
            roll, pick, where = self._rng.random(), self._rng.random(), self._rng.random()
            fault = ""
            if roll < f.error_rate:
                choice = f.errors[int(pick * len(f.errors)) % len(f.errors)]
                fault = "slowdown" if choice == "slowdown" else f"error:{choice}"
            elif roll < f.error_rate + f.drop_rate:
                fault = "drop"
            elif has_body and roll < f.error_rate + f.drop_rate + f.flip_rate and (
                    f.flip_max is None or self.stats.flips < f.flip_max):
                fault = "flip"
                self.stats.flips += 1
            return f, fault, int(where * 1_000_000)

    def _serve(self, client_sock: socket.socket) -> None:
        self._track(client_sock, True)
        client, pair = _Conn(client_sock), _Pair()
        try:
            while not self._stopping and self._one_request(client, pair):
                pass
        except (OSError, ProxyError):
            pass
        finally:
            self._track(client_sock, False)
            with contextlib.suppress(OSError):
                client_sock.close()
            if pair.upstream is not None:  # a cut request leaves the server with a short body: it discards it
                self._track(pair.upstream.sock, False)
                _reset(pair.upstream.sock)

    def _connect(self, pair: _Pair) -> _Conn:
        if pair.upstream is not None and not pair.upstream.closed_by_peer():
            return pair.upstream
        if pair.upstream is not None:
            self._track(pair.upstream.sock, False)
            pair.upstream.sock.close()
        sock = socket.create_connection(self.upstream, timeout=120)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(sock, True)
        pair.upstream = _Conn(sock)
        return pair.upstream

    def _one_request(self, client: _Conn, pair: _Pair) -> bool:
        """Relay one request and its response; False when the client connection must close."""
        raw = client.read_until(b"\r\n\r\n")
        if raw is None:
            return False
        start, headers = _parse_head(raw[:-4])
        method, path = start.split(" ", 2)[:2]
        length = _header(headers, "content-length")
        chunked = "chunked" in (_header(headers, "transfer-encoding") or "").lower()
        body_len = int(length) if length else 0
        has_body = chunked or body_len > 0
        expect = (_header(headers, "expect") or "").lower() == "100-continue"
        faults, fault, where = self._draw(method, path, has_body)
        ex = Exchange(method, path, fault, body_bytes=body_len, started=time.monotonic())
        with self._cond:
            self.stats.exchanges.append(ex)
        if faults.latency:
            time.sleep(faults.latency)

        if fault.startswith("error") or fault == "slowdown":
            self._bump(errors=1)
            keep = not expect  # with Expect the body never comes: the connection cannot be reused
            if not expect:
                self._relay_body(client, None, body_len, chunked, faults, flip_at=None)
            self._answer_error(client.sock, method, fault, keep)
            ex.status, ex.finished = (503 if fault == "slowdown" else int(fault.split(":")[1])), time.monotonic()
            return keep

        if expect:  # answered here, so the body can be paced and faulted before the server sees it
            client.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            headers = [(k, v) for k, v in headers if k.lower() != "expect"]
        upstream = self._connect(pair)
        upstream.sock.sendall(_build_head(start, headers))
        if has_body:
            # A chunked body of unknown length is cut right after the head.
            cut = (0 if chunked else body_len // 2) if fault == "drop" else None
            flip_at = (where % body_len if body_len else 0) if fault == "flip" else None
            self._bump(bodies_in_flight=1)
            try:
                self._relay_body(client, upstream, body_len, chunked, faults, flip_at=flip_at, cut_at=cut)
            finally:
                self._bump(bodies_in_flight=-1)
            if cut is not None:
                self._bump(drops=1)
                ex.finished = time.monotonic()
                _reset(client.sock)
                raise ProxyError("dropped mid-body")
        self._bump(forwarded=1)
        keep = self._relay_response(client, upstream, method, faults, ex,
                                    drop=fault == "drop" and not has_body)
        ex.finished = time.monotonic()
        return keep

    def _answer_error(self, sock: socket.socket, method: str, fault: str, keep: bool) -> None:
        status = 503 if fault == "slowdown" else int(fault.split(":")[1])
        code, message = ERROR_BODIES["slowdown" if fault == "slowdown" else status]
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>fault-proxy</RequestId></Error>").encode()
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                   ("Connection", "keep-alive" if keep else "close")]
        if status == 503:
            headers.append(("Retry-After", "0"))
        sock.sendall(_build_head(f"HTTP/1.1 {status} {REASONS[status]}", headers) + (b"" if method == "HEAD" else body))

    def _pace(self, faults: Faults, sent: int, began: float) -> None:
        if faults.upload_bps:
            ahead = sent / faults.upload_bps - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)

    def _relay_body(self, client: _Conn, upstream: _Conn | None, length: int, chunked: bool, faults: Faults, *,
                    flip_at: int | None, cut_at: int | None = None) -> None:
        """Copy the request body from client to upstream (or discard it when upstream is None)."""
        began, sent = time.monotonic(), 0
        if chunked and cut_at is not None:
            return

        def out(data: bytes, *, payload: bool) -> None:
            nonlocal sent, flip_at
            if payload and flip_at is not None and sent <= flip_at < sent + len(data):
                i = flip_at - sent
                data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                flip_at = None
            if upstream is not None:
                upstream.sock.sendall(data)
            if payload:
                sent += len(data)
                self._pace(faults, sent, began)

        if not chunked:
            while sent < length:
                step = min(CHUNK, length - sent, 16 * 1024 if faults.upload_bps else CHUNK)
                if cut_at is not None and sent + step > cut_at:
                    if cut_at > sent:
                        out(client.read_some(cut_at - sent), payload=True)
                    return
                out(client.read_some(step), payload=True)
            return
        flip_at = 0 if flip_at is not None else None  # chunked: the first payload byte
        while True:
            size_line = client.read_until(b"\r\n")
            if size_line is None:
                raise ProxyError("connection closed mid-chunk")
            out(size_line, payload=False)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:  # trailers, then the empty line
                while True:
                    line = client.read_until(b"\r\n")
                    if line is None:
                        raise ProxyError("connection closed in trailers")
                    out(line, payload=False)
                    if line == b"\r\n":
                        return
            left = size
            while left:
                data = client.read_some(min(left, CHUNK))
                left -= len(data)
                out(data, payload=True)
            crlf = client.read_until(b"\r\n")
            out(crlf or b"\r\n", payload=False)

    def _relay_response(self, client: _Conn, upstream: _Conn, method: str, faults: Faults, ex: Exchange, *,
                        drop: bool) -> bool:
        """Copy one response (after any 1xx) from upstream to client; False when the connection must close."""
        while True:
            raw = upstream.read_until(b"\r\n\r\n")
            if raw is None:
                raise ProxyError("upstream closed before answering")
            start, headers = _parse_head(raw[:-4])
            status = int(start.split(" ", 2)[1])
            if status >= 200 or status == 101:
                break
            client.sock.sendall(raw)  # an interim answer (the server's own 100 Continue)
        ex.status = status
        if faults.hold_response:
            self._bump(held=1)
            try:
                time.sleep(faults.hold_response)
            finally:
                self._bump(held=-1)
        client.sock.sendall(raw)
        close = "close" in (_header(headers, "connection") or "").lower()
        length = _header(headers, "content-length")
        chunked = "chunked" in (_header(headers, "transfer-encoding") or "").lower()
        if method == "HEAD" or status in (204, 304):
            return not close
        if chunked:
            self._copy_chunked(upstream, client)
            return not close
        if length is None:  # body runs to EOF
            while data := upstream.read_to_eof():
                client.sock.sendall(data)
            return False
        left = int(length)
        cut = left // 2 if drop else None
        while left:
            if cut is not None and int(length) - left >= cut:
                self._bump(drops=1)
                _reset(client.sock)
                raise ProxyError("dropped mid-response")
            data = upstream.read_some(min(left, CHUNK if cut is None else max(1, cut)))
            left -= len(data)
            client.sock.sendall(data)
        return not close

    def _copy_chunked(self, src: _Conn, dst: _Conn) -> None:
        while True:
            size_line = src.read_until(b"\r\n")
            if size_line is None:
                raise ProxyError("upstream closed mid-chunk")
            dst.sock.sendall(size_line)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    line = src.read_until(b"\r\n")
                    if line is None:
                        raise ProxyError("upstream closed in trailers")
                    dst.sock.sendall(line)
                    if line == b"\r\n":
                        return
            left = size + 2
            while left:
                data = src.read_some(min(left, CHUNK))
                left -= len(data)
                dst.sock.sendall(data)
