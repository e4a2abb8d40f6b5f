"""Leases in Redis: one owner at a time for a named thing (a watched wedding), across processes and machines.
A lease is a key holding its owner's id with an expiry (SET NX PX); the owner renews it while it lives, and
only the owner may renew or release it (checked and done atomically in Redis, by a Lua script). A process killed
with -9 renews nothing, so its leases end after their time and another process takes over."""

from __future__ import annotations

from redis import Redis

_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
          "else return 0 end")
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def lease_acquire(*, conn: Redis, key: str, owner: str, seconds: float) -> bool:
    """Take the lease if nobody holds it (or renew it if ``owner`` already does)."""
    if conn.set(key, owner, nx=True, px=int(seconds * 1000)):
        return True
    return lease_renew(conn=conn, key=key, owner=owner, seconds=seconds)


def lease_renew(*, conn: Redis, key: str, owner: str, seconds: float) -> bool:
    """Extend the lease if ``owner`` still holds it; False when it expired or another process took it."""
    return bool(conn.eval(_RENEW, 1, key, owner, int(seconds * 1000)))


def lease_release(*, conn: Redis, key: str, owner: str) -> bool:
    return bool(conn.eval(_RELEASE, 1, key, owner))


def lease_owner(*, conn: Redis, key: str) -> str:
    value = conn.get(key)
    return value.decode() if isinstance(value, bytes) else (value or "")
