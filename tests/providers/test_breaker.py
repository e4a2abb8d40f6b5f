"""The circuit breaker: its transition table (pure) and its shared state in real Redis."""

import threading
import uuid

import pytest
import redis

from providers.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerConfig,
    BreakerState,
    BreakerStore,
    Window,
    breaker_due,
    breaker_next,
    breaker_status,
)

CFG = BreakerConfig(failures=3, error_rate=0.5, window=60, min_calls=10, cooldown=30, trial_timeout=5)
T = 1000.0


@pytest.mark.parametrize(
    ("before", "ok", "window", "trial", "expected_state", "expected_failures"),
    [
        (BreakerState(), True, Window(1, 0), False, CLOSED, 0),
        (BreakerState(CLOSED, 2), True, Window(3, 2), False, CLOSED, 0),
        (BreakerState(), False, Window(1, 1), False, CLOSED, 1),
        (BreakerState(CLOSED, 1), False, Window(2, 2), False, CLOSED, 2),
        (BreakerState(CLOSED, 2), False, Window(3, 3), False, OPEN, 3),
        # the error rate opens it without three in a row: 5 of 10 failed
        (BreakerState(CLOSED, 0), False, Window(10, 5), False, OPEN, 1),
        # ... but not below the minimum number of calls, nor below the rate
        (BreakerState(CLOSED, 0), False, Window(9, 5), False, CLOSED, 1),
        (BreakerState(CLOSED, 0), False, Window(10, 4), False, CLOSED, 1),
        # open: work already in flight changes nothing
        (BreakerState(OPEN, 3, opened_at=T), False, Window(), False, OPEN, 3),
        (BreakerState(OPEN, 3, opened_at=T), True, Window(), False, OPEN, 3),
        # the trial decides
        (BreakerState(HALF_OPEN, 3, opened_at=T), True, Window(), True, CLOSED, 0),
        (BreakerState(HALF_OPEN, 3, opened_at=T), False, Window(), True, OPEN, 4),
        # half-open: any failure reopens, a success that is not the trial does not close
        (BreakerState(HALF_OPEN, 3, opened_at=T), False, Window(), False, OPEN, 4),
        (BreakerState(HALF_OPEN, 3, opened_at=T), True, Window(), False, HALF_OPEN, 3),
    ],
)
def test_the_transition_table(before, ok, window, trial, expected_state, expected_failures):
    after = breaker_next(before, ok=ok, now=T + 100, window=window, config=CFG, trial=trial, error="boom")
    assert (after.state, after.consecutive_failures) == (expected_state, expected_failures)
    if expected_state == OPEN and before.state != OPEN:
        assert after.opened_at == T + 100
        assert after.last_error == "boom"


def test_reopening_restarts_the_cool_down():
    s = BreakerState(HALF_OPEN, 3, opened_at=T)
    after = breaker_next(s, ok=False, now=T + 500, window=Window(), config=CFG, trial=True)
    assert not breaker_due(after, T + 500 + 29, CFG)
    assert breaker_due(after, T + 500 + 30, CFG)


def test_a_trial_is_due_only_after_the_cool_down():
    s = BreakerState(OPEN, 3, opened_at=T)
    assert not breaker_due(s, T + 29.9, CFG)
    assert breaker_due(s, T + 30, CFG)
    assert not breaker_due(BreakerState(), T, CFG)


@pytest.mark.parametrize(
    ("state", "window", "status"),
    [
        (BreakerState(), Window(5, 0), "active"),
        (BreakerState(CLOSED, 1), Window(5, 1), "degraded"),
        (BreakerState(CLOSED, 0), Window(5, 1), "degraded"),  # recent failures, even after a success
        (BreakerState(HALF_OPEN), Window(), "degraded"),
        (BreakerState(OPEN), Window(), "down"),
    ],
)
def test_the_status_follows_the_breaker(state, window, status):
    assert breaker_status(state, window) == status


# -- the store on real Redis --------------------------------------------------------------------------
class Clock:
    def __init__(self, t: float = T):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def redis_conn(settings):
    conn = redis.Redis.from_url(settings.REDIS_URL)
    prefix = f"test:breaker:{uuid.uuid4().hex}"
    yield conn, prefix
    for key in conn.scan_iter(f"{prefix}:*"):  # only our own keys: other suites share this Redis
        conn.delete(key)


def test_two_stores_share_one_breaker(redis_conn):
    conn, prefix = redis_conn
    clock = Clock()
    worker_a = BreakerStore(conn, config=CFG, prefix=prefix, clock=clock)
    worker_b = BreakerStore(redis.Redis(connection_pool=conn.connection_pool), config=CFG, prefix=prefix,
                            clock=clock)
    assert worker_a.record(7, False, "timeout").after.state == CLOSED
    assert worker_b.record(7, False, "timeout").after.state == CLOSED
    t = worker_a.record(7, False, "connection refused")
    assert t.opened and t.status_after == "down"
    assert worker_b.get(7).state == OPEN
    assert worker_b.get(7).last_error == "connection refused"
    assert worker_b.get(8).state == CLOSED  # another provider is untouched


def test_the_error_rate_over_the_window_opens_it(redis_conn):
    conn, prefix = redis_conn
    clock = Clock()
    store = BreakerStore(conn, config=CFG, prefix=prefix, clock=clock)
    opened_at_call = []
    for i in range(12):  # alternate: never two failures in a row, but half of the calls fail
        clock.t += 1
        if store.record(3, i % 2 == 0, "slow down").opened:
            opened_at_call.append(i + 1)
    assert opened_at_call == [10]  # the tenth call reached min_calls with 5 of 10 failed
    assert store.get(3).state == OPEN


def test_a_batch_of_successes_counts_each_in_the_window(redis_conn):
    conn, prefix = redis_conn
    clock = Clock()
    store = BreakerStore(conn, config=CFG, prefix=prefix, clock=clock)
    store.record(5, False, "blip")
    store.record(5, False, "blip")
    t = store.record(5, True, count=8)  # one record for eight uploads of a batch
    assert t.after.consecutive_failures == 0
    assert store.window(5) == Window(10, 2)
    clock.t += 1
    assert not store.record(5, False, "blip").opened  # 3 of 11 failed: under the rate, not consecutive
    with pytest.raises(ValueError):
        store.record(5, False, "x", count=2)


def test_failures_age_out_of_the_window(redis_conn):
    conn, prefix = redis_conn
    clock = Clock()
    store = BreakerStore(conn, config=CFG, prefix=prefix, clock=clock)
    store.record(4, False, "blip")
    assert store.record(4, True).status_after == "degraded"
    clock.t += CFG.window + 1
    assert store.window(4) == Window(0, 0)
    assert store.record(4, True).status_after == "active"


def test_concurrent_failures_are_all_counted(redis_conn):
    conn, prefix = redis_conn
    config = BreakerConfig(failures=1000, min_calls=100000)
    store = BreakerStore(conn, config=config, prefix=prefix)

    def fail_ten():
        for _ in range(10):
            store.record(5, False, "x")

    threads = [threading.Thread(target=fail_ten) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(5).consecutive_failures == 80


def test_exactly_one_trial_after_the_cool_down(redis_conn):
    conn, prefix = redis_conn
    clock = Clock()
    stores = [BreakerStore(conn, config=CFG, prefix=prefix, clock=clock) for _ in range(5)]
    for _ in range(3):
        stores[0].record(9, False, "down")
    assert not stores[1].try_trial(9)  # still cooling down
    clock.t += CFG.cooldown
    won = []
    barrier = threading.Barrier(len(stores))

    def attempt(store):
        barrier.wait()
        won.append(store.try_trial(9))

    threads = [threading.Thread(target=attempt, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False] * 4 + [True]
    assert stores[2].get(9).state == HALF_OPEN
    t = stores[3].record(9, True, trial=True)
    assert t.closed and t.status_after == "active"
    assert stores[4].get(9) == BreakerState(CLOSED, 0, changed_at=clock.t)


def test_a_failed_trial_opens_it_again_and_frees_the_trial(redis_conn):
    conn, prefix = redis_conn
    clock = Clock()
    store = BreakerStore(conn, config=CFG, prefix=prefix, clock=clock)
    for _ in range(3):
        store.record(10, False, "down")
    clock.t += CFG.cooldown
    assert store.try_trial(10)
    t = store.record(10, False, "still down", trial=True)
    assert t.after.state == OPEN and t.after.opened_at == clock.t
    assert not store.try_trial(10)  # a new cool-down
    clock.t += CFG.cooldown
    assert store.try_trial(10)  # and the trial key was released


def test_an_abandoned_trial_expires(redis_conn):
    conn, prefix = redis_conn
    clock = Clock()
    store = BreakerStore(conn, config=BreakerConfig(failures=1, cooldown=0, trial_timeout=1), prefix=prefix,
                         clock=clock)
    store.record(11, False, "down")
    assert store.try_trial(11)
    assert not store.try_trial(11)
    conn.delete(store.keys(11)[3])  # what the key's TTL does when the worker running the trial died
    assert store.try_trial(11)
    assert conn.ttl(store.keys(11)[3]) == 1


def test_reset_closes_it_with_a_clean_history(redis_conn):
    conn, prefix = redis_conn
    store = BreakerStore(conn, config=CFG, prefix=prefix)
    for _ in range(3):
        store.record(12, False, "down")
    store.reset(12)
    assert store.get(12) == BreakerState()
    assert store.window(12) == Window()
