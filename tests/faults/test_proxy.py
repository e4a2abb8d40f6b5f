"""The fault proxy's behaviour, pinned against a tiny local HTTP/1.1 server (stdlib only, no database)."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.faults.proxy import FaultProxy


class Store(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.objects: dict[str, bytes] = {}
        self.connections: set[tuple] = set()
        self.incomplete = 0
        self.stored = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Store

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", 0))
        try:
            data = self.rfile.read(n)
        except ConnectionError:
            return None
        return data if len(data) == n else None

    def _reply(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_PUT(self) -> None:
        self.server.connections.add(self.client_address)
        body = self._body()
        if body is None:
            self.server.incomplete += 1
            self.close_connection = True
            return
        self.server.objects[self.path] = body
        self.server.stored.set()
        self._reply(200, b"stored")

    def do_GET(self) -> None:
        self.server.connections.add(self.client_address)
        self._reply(200, self.server.objects.get(self.path, b""))

    do_HEAD = do_GET


@pytest.fixture
def store() -> Iterator[Store]:
    server = Store()
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(store: Store) -> Iterator[FaultProxy]:
    with FaultProxy(store.server_address[1], seed=42) as p:
        yield p


def conn(proxy: FaultProxy, timeout: float = 10) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def put(c: http.client.HTTPConnection, path: str, body: bytes, **headers: str) -> tuple[int, bytes]:
    c.request("PUT", path, body=body, headers=headers)
    r = c.getresponse()
    return r.status, r.read()


def test_it_relays_requests_and_keeps_the_connection_alive(proxy, store):
    c = conn(proxy)
    assert put(c, "/a", b"hello" * 1000) == (200, b"stored")
    c.request("GET", "/a")
    assert c.getresponse().read() == b"hello" * 1000
    c.request("HEAD", "/a")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"" and r.headers["Content-Length"] == "5000"
    assert len(store.connections) == 1  # three requests, one upstream connection
    assert proxy.stats.forwarded == 3 and proxy.stats.errors == 0


def test_it_relays_chunked_bodies_and_answers_expect_continue_itself(proxy, store):
    c = conn(proxy)
    c.request("PUT", "/chunked", body=iter([b"abc", b"defg", b"h" * 70000]), encode_chunked=True)
    assert c.getresponse().read() == b"stored"
    assert store.objects["/chunked"] == b"abcdefg" + b"h" * 70000
    assert put(c, "/expect", b"x" * 10, Expect="100-continue") == (200, b"stored")
    assert store.objects["/expect"] == b"x" * 10


def statuses(proxy: FaultProxy, n: int) -> list[int]:
    c = conn(proxy)
    out = []
    for i in range(n):
        status, body = put(c, f"/k{i}", b"data")
        out.append(status)
        if status == 503 and b"SlowDown" in body:
            out[-1] = -503
    return out


def test_it_answers_a_seeded_fraction_of_requests_with_500_503_and_slowdown(store):
    with FaultProxy(store.server_address[1], seed=7) as p1, FaultProxy(store.server_address[1], seed=7) as p2:
        p1.set(error_rate=0.3)
        p2.set(error_rate=0.3)
        first, second = statuses(p1, 60), statuses(p2, 60)
    assert first == second  # same seed, same faults
    errors = [s for s in first if s != 200]
    assert 8 <= len(errors) <= 30
    assert {500, 503, -503} <= set(errors)  # plain 500, plain 503 and S3's SlowDown (a 503 too)
    assert p1.stats.errors == len(errors)
    assert len(store.objects) == first.count(200)  # an answered error never reached the server


def test_an_injected_error_on_head_has_no_body_and_keeps_the_connection(proxy):
    proxy.set(error_rate=1.0, errors=(503,))
    c = conn(proxy)
    for _ in range(2):
        c.request("HEAD", "/x")
        r = c.getresponse()
        assert r.status == 503 and r.read() == b""


def test_a_dropped_upload_is_cut_mid_body_and_never_stored(proxy, store):
    proxy.set(drop_rate=1.0)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        put(conn(proxy), "/dropped", b"z" * 500_000)
    proxy.wait_for(lambda s: s.drops == 1)
    deadline = time.monotonic() + 5
    while store.incomplete == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "/dropped" not in store.objects and store.incomplete == 1


def test_a_download_can_be_cut_mid_response(proxy, store):
    store.objects["/big"] = b"q" * 300_000
    proxy.set(drop_rate=1.0)
    c = conn(proxy)
    c.request("GET", "/big")
    r = c.getresponse()
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        r.read()


def test_a_flipped_byte_reaches_the_server_once_and_only_in_the_body(proxy, store):
    proxy.set(flip_rate=1.0, flip_max=1)
    c = conn(proxy)
    body = bytes(range(256)) * 200
    put(c, "/one", body)
    put(c, "/two", body)
    changed = [i for i, (a, b) in enumerate(zip(store.objects["/one"], body, strict=True)) if a != b]
    assert len(changed) == 1 and store.objects["/one"][changed[0]] == body[changed[0]] ^ 0xFF
    assert store.objects["/two"] == body and proxy.stats.flips == 1
    assert [e.fault for e in proxy.stats.exchanges] == ["flip", ""]


def test_match_limits_faults_to_some_requests(proxy, store):
    proxy.set(error_rate=1.0, match=lambda method, path: method == "PUT")
    c = conn(proxy)
    assert put(c, "/p", b"1")[0] in (500, 503)
    c.request("GET", "/p")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b""
    proxy.set(error_rate=0.0, hold_response=5.0, latency=5.0, match=lambda method, path: path == "/slow")
    began = time.monotonic()
    assert put(c, "/fast", b"2") == (200, b"stored")
    assert time.monotonic() - began < 1.0 and proxy.stats.held == 0


def test_latency_and_bandwidth_slow_requests_down(proxy, store):
    proxy.set(latency=0.2)
    began = time.monotonic()
    put(conn(proxy), "/slow", b"s")
    assert time.monotonic() - began >= 0.2
    proxy.set(latency=0.0, upload_bps=400_000)
    began = time.monotonic()
    put(conn(proxy), "/trickle", b"t" * 200_000)
    assert time.monotonic() - began >= 0.45 and store.objects["/trickle"] == b"t" * 200_000


def test_a_held_response_comes_after_the_server_stored_the_upload(proxy, store):
    proxy.set(hold_response=1.0)
    result: list[tuple[int, bytes]] = []
    t = threading.Thread(target=lambda: result.append(put(conn(proxy), "/held", b"h" * 1000)))
    t.start()
    proxy.wait_for(lambda s: s.held == 1, timeout=5)
    assert store.objects["/held"] == b"h" * 1000 and result == []  # stored, client not told yet
    t.join(timeout=5)
    assert result == [(200, b"stored")] and proxy.stats.held == 0


def test_unknown_faults_are_refused(proxy):
    with pytest.raises(TypeError):
        proxy.set(eror_rate=0.5)
