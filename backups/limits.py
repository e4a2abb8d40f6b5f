"""Per-provider upload concurrency shared by every worker on every machine, kept in Redis.

A counting semaphore: a sorted set of holder tokens scored by expiry, so a worker that dies
while holding a slot frees it when the lease runs out instead of blocking the provider forever.
``provider_slot`` holds one slot for one block; ``ProviderSlots`` keeps the slots a batch, restore or
verify took for its next files, and gives back those left unused for ``WEDBACKUP_SLOT_IDLE`` seconds or
taken more than ``WEDBACKUP_SLOT_KEEP`` seconds ago.
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
# Held tokens Redis no longer has (its lease ran out during an outage, or Redis lost its data): not slots any more.
_lost: set[str] = set()
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
                    pipe.zadd(key, {token: expiry}, xx=True, ch=True)  # 0: the token is no longer there
                renewed = pipe.execute()
                with _held_lock:
                    _lost.update(token for (_, token, _), ok in zip(items, renewed, strict=True)
                                 if not ok and token in _held)


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
        _lost.discard(token)


def _after_fork_in_child() -> None:
    """A forked child holds none of its parent's slots and has no renewer thread (nor its locks)."""
    global _held_lock, _wake
    _held_lock, _wake = threading.Lock(), threading.Event()
    _held.clear()
    _lost.clear()
    _renewer[:] = [None, 0, 0.0]


os.register_at_fork(after_in_child=_after_fork_in_child)


def _try_acquire(conn, provider_id: int, limit: int, lease: float, token: str) -> bool:
    now = time.time()
    return bool(conn.eval(_ACQUIRE, 1, _key(provider_id), now, limit, now + lease, token))


def _give_back(conn, provider_id: int, token: str) -> None:
    _release(token)
    with contextlib.suppress(redis.RedisError):  # Redis gone: the lease runs out by itself
        conn.zrem(_key(provider_id), token)


@contextlib.contextmanager
def provider_slot(provider_id: int, *, limit: int | None = None, wait: float = 600.0) -> Iterator[None]:
    """Hold one of ``limit`` upload slots for the provider while the block runs."""
    conn = _conn()
    limit = limit or settings.WEDBACKUP_PROVIDER_CONCURRENCY
    lease = settings.WEDBACKUP_SLOT_LEASE  # short, and renewed while held: a killed worker's slot frees soon
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    delay = 0.01
    while not _try_acquire(conn, provider_id, limit, lease, token):
        if time.monotonic() > deadline:
            raise SlotTimeout(f"no upload slot for provider {provider_id} within {wait:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    _hold(token, conn, _key(provider_id), lease)  # renewed every lease/3 by the process's renewer thread
    try:
        yield
    finally:
        _give_back(conn, provider_id, token)


class ProviderSlots:
    """The provider slots of one batch, restore or verify (the same Redis slots as ``provider_slot``, shared with
    every worker on every machine): at most ``limit`` per provider at once. A slot taken from Redis is kept for
    the threads' next file of that provider, so a file costs no Redis round trip, and goes back to Redis once
    unused for ``idle`` seconds (a long batch does not keep slots from workers elsewhere while it reads or
    hashes) or at ``close``. Threads wait here on a condition, woken by a local release, rather than polling."""

    def __init__(self, *, limit: int | None = None, idle: float | None = None, keep: float | None = None,
                 wait: float = 600.0):
        self.limit = limit or settings.WEDBACKUP_PROVIDER_CONCURRENCY
        self.idle = settings.WEDBACKUP_SLOT_IDLE if idle is None else idle
        # A slot goes back to Redis on release once it was taken ``keep`` seconds ago, however busy this is:
        # workers elsewhere waiting for the provider get their turn, and a lost lease is not reused for long.
        self.keep = settings.WEDBACKUP_SLOT_KEEP if keep is None else keep
        self.wait = wait
        self._conn = _conn()
        self._lease = settings.WEDBACKUP_SLOT_LEASE
        self._cond = threading.Condition()
        self._free: dict[int, list[tuple[str, float]]] = {}  # provider -> (token, unused since), oldest first
        self._taken: dict[int, int] = {}  # provider -> slots this holds in Redis (in use, free, or being taken)
        self._since: dict[str, float] = {}  # token -> when it was taken from Redis
        self._closed = False
        self._reaper: threading.Thread | None = None

    @contextlib.contextmanager
    def hold(self, provider_id: int) -> Iterator[None]:
        token = self._take(provider_id)
        try:
            yield
        finally:
            now = time.monotonic()
            with self._cond:
                back = (self._closed or self.idle <= 0 or now - self._since[token] >= self.keep
                        or token in _lost)
                if back:
                    self._forget(provider_id, token)
                else:
                    self._free.setdefault(provider_id, []).append((token, now))
                    self._reaper_start()
                self._cond.notify_all()
            if back:
                _give_back(self._conn, provider_id, token)

    def held(self, provider_id: int) -> int:
        """Slots this holds in Redis for the provider now, in use or kept for the next file."""
        with self._cond:
            return self._taken.get(provider_id, 0)

    def _take(self, provider_id: int) -> str:
        deadline = time.monotonic() + self.wait
        delay = 0.01
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        raise RuntimeError("provider slots used after close")
                    free = self._free.get(provider_id)
                    if free:
                        token = free.pop()[0]  # the most recently used: the oldest go back to Redis first
                        if token not in _lost:
                            return token
                        self._forget(provider_id, token)  # Redis no longer counts it: take a real one
                        _release(token)
                        continue
                    if self._taken.get(provider_id, 0) < self.limit:
                        self._taken[provider_id] = self._taken.get(provider_id, 0) + 1
                        break
                    self._cond.wait()  # every slot of ours is in use: the next local release wakes us
            token = uuid.uuid4().hex
            try:
                taken = _try_acquire(self._conn, provider_id, self.limit, self._lease, token)
            except BaseException:
                self._untake(provider_id)
                with contextlib.suppress(redis.RedisError):  # the script may have run and its answer been lost
                    self._conn.zrem(_key(provider_id), token)
                raise
            if taken:
                _hold(token, self._conn, _key(provider_id), self._lease)
                with self._cond:
                    self._since[token] = time.monotonic()
                    closed = self._closed
                if not closed:
                    return token
                with self._cond:
                    self._forget(provider_id, token)
                _give_back(self._conn, provider_id, token)
                raise RuntimeError("provider slots used after close")
            self._untake(provider_id)  # workers elsewhere hold them all: try again, or take one freed here
            with self._cond:
                if time.monotonic() > deadline:
                    raise SlotTimeout(f"no upload slot for provider {provider_id} within {self.wait:.0f}s")
                self._cond.wait(delay)
            delay = min(delay * 2, 0.5)

    def _forget(self, provider_id: int, token: str) -> None:  # called with the condition held
        self._taken[provider_id] -= 1
        self._since.pop(token, None)

    def _untake(self, provider_id: int) -> None:
        with self._cond:
            self._taken[provider_id] -= 1
            self._cond.notify_all()

    def _reaper_start(self) -> None:  # called with the condition held
        if self._reaper is None and not self._closed:
            self._reaper = threading.Thread(target=self._reap, daemon=True, name="slot-reaper")
            self._reaper.start()

    def _reap(self) -> None:
        """Give back to Redis every slot unused for ``idle`` seconds, until ``close``."""
        while True:
            with self._cond:
                if self._closed:
                    return
                now = time.monotonic()
                stale = self._stale(before=now - self.idle)
                if not stale:
                    oldest = min((since for free in self._free.values() for _, since in free), default=None)
                    self._cond.wait(max(self.idle, 0.05) if oldest is None else max(oldest + self.idle - now, 0.01))
                    continue
            for provider_id, token in stale:
                _give_back(self._conn, provider_id, token)

    def _stale(self, *, before: float) -> list[tuple[int, str]]:  # called with the condition held
        """Take out of the free lists every slot unused since ``before``: the caller gives them back to Redis."""
        stale = []
        for provider_id, free in self._free.items():
            gone = [token for token, since in free if since <= before]
            free[:] = [(token, since) for token, since in free if since > before]
            for token in gone:
                self._forget(provider_id, token)
            stale += [(provider_id, token) for token in gone]
        if stale:
            self._cond.notify_all()  # a thread waiting for a slot of ours may now take one from Redis
        return stale

    def close(self) -> None:
        """Give every slot back to Redis. Call it when no thread uses these slots any more."""
        with self._cond:
            self._closed = True
            stale = self._stale(before=float("inf"))
            self._cond.notify_all()
            reaper = self._reaper
        for provider_id, token in stale:
            _give_back(self._conn, provider_id, token)
        if reaper is not None:
            reaper.join()

    def __enter__(self) -> ProviderSlots:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def slots_in_use(provider_id: int) -> int:
    conn = _conn()
    conn.zremrangebyscore(_key(provider_id), "-inf", time.time())
    return conn.zcard(_key(provider_id))
