"""Per-provider upload concurrency shared by every worker on every machine, kept in Redis.

A counting semaphore: a sorted set of holder tokens scored by expiry, so a worker that dies
while holding a slot frees it when the lease runs out instead of blocking the provider forever.
"""

from __future__ import annotations

import contextlib
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
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease / 3):
            with contextlib.suppress(redis.RedisError):
                conn.zadd(_key(provider_id), {token: time.time() + lease}, xx=True)

    renewer = threading.Thread(target=renew, daemon=True, name=f"slot-{provider_id}")
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with contextlib.suppress(redis.RedisError):  # Redis gone: the lease runs out by itself
            conn.zrem(_key(provider_id), token)


def slots_in_use(provider_id: int) -> int:
    conn = _conn()
    conn.zremrangebyscore(_key(provider_id), "-inf", time.time())
    return conn.zcard(_key(provider_id))
