"""A circuit breaker per provider, its state in Redis so every worker on every machine shares it.

closed --N consecutive failures, or an error rate over a window--> open --cool-down--> half-open
(exactly one trial, claimed with SET NX) --success--> closed / --failure--> open again.

``breaker_next`` is the whole decision, pure; ``BreakerStore`` keeps the state and applies it under
WATCH/MULTI so two workers recording at once never lose an update.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import django_rq
from django.conf import settings

from .models import Provider, ProviderHealthCheck
from .signals import breaker_transitioned

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
DEFAULT_PREFIX = "wedbackup:breaker"


@dataclass(frozen=True)
class BreakerConfig:
    failures: int = 3  # consecutive failures that open the breaker
    error_rate: float = 0.5  # ... or this share of failed calls in the window
    window: float = 120.0  # seconds
    min_calls: int = 10  # the rate only counts with at least this many calls in the window
    cooldown: float = 30.0  # seconds open before one trial is allowed
    trial_timeout: float = 60.0  # a trial not reported within this is abandoned; another may start

    @classmethod
    def from_settings(cls) -> BreakerConfig:
        return cls(
            failures=int(getattr(settings, "WEDBACKUP_BREAKER_FAILURES", cls.failures)),
            error_rate=float(getattr(settings, "WEDBACKUP_BREAKER_ERROR_RATE", cls.error_rate)),
            window=float(getattr(settings, "WEDBACKUP_BREAKER_WINDOW", cls.window)),
            min_calls=int(getattr(settings, "WEDBACKUP_BREAKER_MIN_CALLS", cls.min_calls)),
            cooldown=float(getattr(settings, "WEDBACKUP_BREAKER_COOLDOWN", cls.cooldown)),
            trial_timeout=float(getattr(settings, "WEDBACKUP_PROBE_TIMEOUT", 20)) * 3,
        )


@dataclass(frozen=True)
class BreakerState:
    state: str = CLOSED
    consecutive_failures: int = 0
    opened_at: float = 0.0
    changed_at: float = 0.0
    last_error: str = ""


@dataclass(frozen=True)
class Window:
    calls: int = 0
    failures: int = 0

    @property
    def error_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0


def breaker_next(
    s: BreakerState, *, ok: bool, now: float, window: Window, config: BreakerConfig, trial: bool = False,
    error: str = "",
) -> BreakerState:
    """The state after one outcome. ``window`` already counts this outcome; ``trial``: the half-open probe."""
    error = error if not ok else s.last_error
    if s.state == CLOSED:
        if ok:
            return replace(s, consecutive_failures=0)
        failures = s.consecutive_failures + 1
        if failures >= config.failures or (
            window.calls >= config.min_calls and window.error_rate >= config.error_rate
        ):
            return BreakerState(OPEN, failures, opened_at=now, changed_at=now, last_error=error)
        return replace(s, consecutive_failures=failures, last_error=error)
    if trial or (s.state == HALF_OPEN and not ok):
        # The trial decides; while half-open any failure is evidence enough to stay away.
        if ok:
            return BreakerState(CLOSED, 0, changed_at=now)
        return BreakerState(OPEN, s.consecutive_failures + 1, opened_at=now, changed_at=now, last_error=error)
    return s  # open: outcomes of work already in flight change nothing


def breaker_due(s: BreakerState, now: float, config: BreakerConfig) -> bool:
    """May a trial start now? (Whether one is already running is for the store's SET NX to decide.)"""
    if s.state == OPEN:
        return now - s.opened_at >= config.cooldown
    return s.state == HALF_OPEN


def breaker_status(s: BreakerState, window: Window) -> str:
    """The provider status the breaker implies: active, degraded or down (draining is staff's, never ours)."""
    if s.state == OPEN:
        return Provider.Status.DOWN
    if s.state == HALF_OPEN or s.consecutive_failures or window.failures:
        return Provider.Status.DEGRADED
    return Provider.Status.ACTIVE


@dataclass(frozen=True)
class Transition:
    provider_id: int
    before: BreakerState
    after: BreakerState
    status_before: str
    status_after: str

    @property
    def opened(self) -> bool:
        return self.before.state == CLOSED and self.after.state == OPEN

    @property
    def closed(self) -> bool:
        return self.before.state != CLOSED and self.after.state == CLOSED


class BreakerStore:
    """The breakers in Redis: a hash per provider, two sorted sets for the window, a key for the trial."""

    def __init__(self, conn, *, config: BreakerConfig | None = None, prefix: str = DEFAULT_PREFIX,
                 clock: Callable[[], float] = time.time):
        self.conn = conn
        self.config = config or BreakerConfig()
        self.prefix = prefix
        self.clock = clock

    def keys(self, provider_id: int) -> list[str]:
        base = f"{self.prefix}:{provider_id}"
        return [base, f"{base}:calls", f"{base}:failures", f"{base}:trial"]

    def get(self, provider_id: int) -> BreakerState:
        return _decode(self.conn.hgetall(self.keys(provider_id)[0]))

    def window(self, provider_id: int) -> Window:
        _, calls, failures, _ = self.keys(provider_id)
        since = self.clock() - self.config.window
        return Window(self.conn.zcount(calls, since, "+inf"), self.conn.zcount(failures, since, "+inf"))

    def record(self, provider_id: int, ok: bool, error: str = "", *, trial: bool = False,
               count: int = 1) -> Transition:
        """One outcome, or ``count`` successes at once (an upload batch reports its successes together;
        the window counts each of them, so error rates stay what they would be one by one)."""
        if count < 1 or (count > 1 and not ok):
            raise ValueError("count > 1 is for successes only")
        key, calls, failures, trial_key = self.keys(provider_id)
        now = self.clock()
        tag = uuid.uuid4().hex[:12]
        members = [f"{now:.6f}:{tag}:{i}" if count > 1 else f"{now:.6f}:{tag}" for i in range(count)]
        member = members[0]
        since = now - self.config.window
        result: list[Transition] = []

        def apply(pipe) -> None:
            result.clear()
            before = _decode(pipe.hgetall(key))
            before_window = Window(pipe.zcount(calls, since, "+inf"), pipe.zcount(failures, since, "+inf"))
            window = Window(before_window.calls + count, before_window.failures + (not ok))
            after = breaker_next(before, ok=ok, now=now, window=window, config=self.config, trial=trial,
                                 error=error[:500])
            if after.state != CLOSED or before.state != CLOSED:
                window = Window()  # a breaker that just closed starts with a clean window
            pipe.multi()
            pipe.hset(key, mapping={**_encode(after), "updated": now})
            if after.state == CLOSED and before.state == CLOSED:
                pipe.zadd(calls, dict.fromkeys(members, now))
                if not ok:
                    pipe.zadd(failures, {member: now})
                for k in (calls, failures):
                    pipe.zremrangebyscore(k, "-inf", since)
                    pipe.expire(k, int(self.config.window) + 60)
            elif after.state != before.state:
                pipe.delete(calls, failures)
            if trial:
                pipe.delete(trial_key)
            result.append(Transition(provider_id, before, after, breaker_status(before, before_window),
                                     breaker_status(after, window)))

        self.conn.transaction(apply, key)
        return result[0]

    def try_trial(self, provider_id: int, *, force: bool = False) -> bool:
        """Claim the one half-open trial: True for exactly one caller once the cool-down has passed."""
        key, _, _, trial_key = self.keys(provider_id)
        now = self.clock()
        state = self.get(provider_id)
        if state.state == CLOSED or not (force or breaker_due(state, now, self.config)):
            return False
        if not self.conn.set(trial_key, uuid.uuid4().hex, nx=True, ex=max(1, int(self.config.trial_timeout))):
            return False
        started: list[bool] = []

        def apply(pipe) -> None:
            started.clear()
            current = _decode(pipe.hgetall(key))
            pipe.multi()
            if current.state == CLOSED:  # closed meanwhile: no trial needed
                pipe.delete(trial_key)
                started.append(False)
                return
            pipe.hset(key, mapping={**_encode(replace(current, state=HALF_OPEN, changed_at=now)), "updated": now})
            started.append(True)

        self.conn.transaction(apply, key)
        return started[0]

    def reset(self, provider_id: int) -> None:
        """Closed, with no history: what staff's "mark up" means."""
        self.conn.delete(*self.keys(provider_id))


def _encode(s: BreakerState) -> dict[str, str | int | float]:
    return {"state": s.state, "consecutive_failures": s.consecutive_failures, "opened_at": s.opened_at,
            "changed_at": s.changed_at, "last_error": s.last_error}


def _decode(raw: dict) -> BreakerState:
    if not raw:
        return BreakerState()
    d = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
         for k, v in raw.items()}
    return BreakerState(d.get("state", CLOSED), int(d.get("consecutive_failures", 0)),
                        float(d.get("opened_at", 0)), float(d.get("changed_at", 0)), d.get("last_error", ""))


_connections: dict[str, object] = {}


def breaker_store() -> BreakerStore:
    """The store on the RQ "default" Redis, configured from settings (one client per Redis config)."""
    config_key = repr(settings.RQ_QUEUES["default"])
    conn = _connections.get(config_key)
    if conn is None:
        conn = _connections[config_key] = django_rq.get_connection("default")
    prefix = getattr(settings, "WEDBACKUP_BREAKER_PREFIX", DEFAULT_PREFIX)
    return BreakerStore(conn, config=BreakerConfig.from_settings(), prefix=prefix)


def breaker_allows(provider_id: int) -> bool:
    """Should new work go to this provider now? Not while open, nor half-open (only the trial goes)."""
    return breaker_store().get(provider_id).state == CLOSED


def breaker_record(provider_id: int, ok: bool, error: str = "", *, trial: bool = False,
                   source: str = "", count: int = 1) -> Transition:
    """Feed one outcome (probe, upload or restore) to the provider's breaker and act on what changed.

    A change of state or implied status is sent as ``signals.breaker_transitioned``: providers mirrors the
    status to the row (``health.breaker_changed``), the backups layer starts or ends a failover.
    ``source`` ("upload" / "restore"): a failure is also kept as a ProviderHealthCheck for the console
    (probes record their own; successful transfers are too many to keep).
    """
    transition = breaker_store().record(provider_id, ok, error, trial=trial, count=count)
    if source and not ok:
        ProviderHealthCheck.objects.create(provider_id=provider_id, source=source, ok=False, error=error[:2000])
    if transition.status_before != transition.status_after or transition.after.state != transition.before.state:
        breaker_transitioned.send(sender=BreakerStore, transition=transition)
    return transition
