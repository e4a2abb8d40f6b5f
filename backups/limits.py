"""Per-provider upload concurrency shared by every worker on every machine, kept in Redis.

A counting semaphore: a sorted set of holder tokens scored by expiry, so a worker that dies
while holding a slot frees it when the lease runs out instead of blocking the provider forever.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator

import django_rq
import redis
from django.conf import settings

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  return 1
end
return 0
"""


class SlotTimeout(Exception):
    pass


_connections: dict[str, object] = {}


def _conn():
    """One Redis client per process and queue configuration (a client is a connection pool)."""
    config = repr(settings.RQ_QUEUES["default"])
    if config not in _connections:
        _connections[config] = django_rq.get_connection("default")
    return _connections[config]


def _key(provider_id: int) -> str:
    return f"wedbackup:slots:provider:{provider_id}"


# Leases held by this process, renewed by one thread (not a thread per upload): token -> (conn, key, lease).
_held: dict[str, tuple[object, str, float]] = {}
_held_lock = threading.Lock()
_wake = threading.Event()
_renewer: list = [None, 0, 0.0]  # thread, pid it runs in, its current tick


def _renew_forever() -> None:
    while True:
        with _held_lock:
            leases = [lease for _, _, lease in _held.values()]
            tick = min(leases, default=settings.WEDBACKUP_SLOT_LEASE) / 3
            _renewer[2] = tick
        _wake.wait(tick)
        _wake.clear()
        with _held_lock:
            held = list(_held.items())
        now = time.time()
        by_conn: dict[int, tuple[object, list]] = {}
        for token, (conn, key, lease) in held:
            by_conn.setdefault(id(conn), (conn, []))[1].append((key, token, now + lease))
        for conn, items in by_conn.values():
            with contextlib.suppress(redis.RedisError):
                pipe = conn.pipeline(transaction=False)
                for key, token, expiry in items:
                    pipe.zadd(key, {token: expiry}, xx=True)
                pipe.execute()


def _hold(token: str, conn, key: str, lease: float) -> None:
    with _held_lock:
        _held[token] = (conn, key, lease)
        thread, pid, tick = _renewer
        if thread is None or pid != os.getpid() or not thread.is_alive():  # none yet, or forked: start one
            thread = threading.Thread(target=_renew_forever, daemon=True, name="slot-renewer")
            _renewer[:] = [thread, os.getpid(), lease / 3]
            thread.start()
        elif lease / 3 < tick:
            _wake.set()  # a shorter lease than the renewer's tick: let it recompute now


def _release(token: str) -> None:
    with _held_lock:
        _held.pop(token, None)


def _after_fork_in_child() -> None:
    """A forked child holds none of its parent's slots and has no renewer thread (nor its locks)."""
    global _held_lock, _wake
    _held_lock, _wake = threading.Lock(), threading.Event()
    _held.clear()
    _renewer[:] = [None, 0, 0.0]


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def provider_slot(provider_id: int, *, limit: int | None = None, wait: float = 600.0) -> Iterator[None]:
    """Hold one of ``limit`` upload slots for the provider while the block runs."""
    conn = _conn()
    limit = limit or settings.WEDBACKUP_PROVIDER_CONCURRENCY
    lease = settings.WEDBACKUP_SLOT_LEASE  # short, and renewed while held: a killed worker's slot frees soon
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        now = time.time()
        if conn.eval(_ACQUIRE, 1, _key(provider_id), now, limit, now + lease, token):
            break
        if time.monotonic() > deadline:
            raise SlotTimeout(f"no upload slot for provider {provider_id} within {wait:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    _hold(token, conn, _key(provider_id), lease)  # renewed every lease/3 by the process's renewer thread
    try:
        yield
    finally:
        _release(token)
        with contextlib.suppress(redis.RedisError):  # Redis gone: the lease runs out by itself
            conn.zrem(_key(provider_id), token)


def slots_in_use(provider_id: int) -> int:
    conn = _conn()
    conn.zremrangebyscore(_key(provider_id), "-inf", time.time())
    return conn.zcard(_key(provider_id))
