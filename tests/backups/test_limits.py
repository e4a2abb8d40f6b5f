"""Per-provider upload slots live in Redis, shared by every worker."""

import threading
import time

import django_rq
import pytest

from backups import limits


@pytest.fixture(autouse=True)
def clean_slots():
    conn = django_rq.get_connection("default")
    conn.delete(limits._key(9999))
    yield
    conn.delete(limits._key(9999))


def peak_holders(slots: list, *, threads: int, files: int, seconds: float) -> int:
    """Threads uploading ``files`` files each, each under a slot from ``slots`` (taken in turn): the most that
    held one at once, as the threads count them and as Redis does."""
    inside, peak, lock = 0, 0, threading.Lock()

    def upload(slot):
        nonlocal inside, peak
        for _ in range(files):
            with slot():
                with lock:
                    inside += 1
                    peak = max(peak, inside, limits.slots_in_use(9999))
                time.sleep(seconds)
                with lock:
                    inside -= 1

    running = [threading.Thread(target=upload, args=(slots[i % len(slots)],)) for i in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    return peak


def test_no_more_than_the_limit_hold_a_slot_at_once():
    assert peak_holders([lambda: limits.provider_slot(9999, limit=2, wait=10)], threads=6, files=1, seconds=0.05) == 2
    assert limits.slots_in_use(9999) == 0


def test_a_full_provider_times_out_with_a_clear_error():
    with (
        limits.provider_slot(9999, limit=1),
        pytest.raises(limits.SlotTimeout, match="provider 9999"),
        limits.provider_slot(9999, limit=1, wait=0.2),
    ):
        pass


def test_a_slot_leaked_by_a_dead_worker_expires(monkeypatch):
    conn = django_rq.get_connection("default")
    conn.zadd(limits._key(9999), {"dead-worker-token": time.time() - 1})  # its lease already ran out
    with limits.provider_slot(9999, limit=1, wait=1):
        assert limits.slots_in_use(9999) == 1


def test_held_slots_are_renewed_by_one_thread_and_freed_on_release(settings):
    settings.WEDBACKUP_SLOT_LEASE = 0.6  # renewed every 0.2 s
    holding, release = threading.Barrier(4), threading.Event()

    def hold():
        with limits.provider_slot(9999, limit=3, wait=5):
            holding.wait()
            release.wait()

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for t in threads:
        t.start()
    holding.wait()
    time.sleep(1.5)  # more than twice the lease: only renewals keep the slots
    assert limits.slots_in_use(9999) == 3
    assert sum(t.name == "slot-renewer" for t in threading.enumerate()) == 1
    release.set()
    for t in threads:
        t.join()
    assert limits.slots_in_use(9999) == 0
    assert not limits._held


@pytest.fixture
def acquires(monkeypatch):
    """Every slot this process takes from Redis (a try that found them all held is not counted)."""
    calls = []
    real = limits._try_acquire

    def counted(*args):
        taken = real(*args)
        if taken:
            calls.append(args[1])
        return taken

    monkeypatch.setattr(limits, "_try_acquire", counted)
    return calls


def test_a_kept_slot_serves_the_next_files_without_redis(acquires):
    with limits.ProviderSlots(limit=2, idle=30) as slots:
        for _ in range(50):
            with slots.hold(9999):
                assert limits.slots_in_use(9999) == 1
        assert slots.held(9999) == 1
        assert limits.slots_in_use(9999) == 1  # kept for the next file, not given back after each
    assert acquires == [9999]  # one Redis round trip to take it, for 50 files
    assert limits.slots_in_use(9999) == 0  # close gave it back


def test_slots_kept_by_two_workers_never_exceed_the_limit_together(acquires):
    workers = [limits.ProviderSlots(limit=3, idle=0.05), limits.ProviderSlots(limit=3, idle=0.05)]
    peak = peak_holders([lambda w=w: w.hold(9999) for w in workers], threads=8, files=10, seconds=0.01)
    for slots in workers:
        slots.close()
    assert peak == 3
    assert limits.slots_in_use(9999) == 0
    assert len(acquires) < 80  # most files ran under a kept slot


def test_a_local_release_wakes_a_waiting_thread_with_the_same_slot(acquires):
    order = []
    with limits.ProviderSlots(limit=1, idle=30) as slots:
        first_in = threading.Event()

        def first():
            with slots.hold(9999):
                first_in.set()
                time.sleep(0.3)
                order.append("first")

        def second():
            first_in.wait()
            with slots.hold(9999):
                order.append("second")

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert order == ["first", "second"]
    assert acquires == [9999]  # the second thread took the slot the first gave back here, not one from Redis


def test_an_idle_kept_slot_goes_back_to_redis_for_workers_elsewhere():
    with limits.ProviderSlots(limit=1, idle=0.2) as slots:
        with slots.hold(9999):
            pass
        assert limits.slots_in_use(9999) == 1
        started = time.monotonic()
        with limits.provider_slot(9999, limit=1, wait=5):  # another worker: waits only for the idle time
            waited = time.monotonic() - started
            assert slots.held(9999) == 0
        assert 0.1 < waited < 2
        with slots.hold(9999):  # and the batch takes one again when it needs it
            assert limits.slots_in_use(9999) == 1
    assert limits.slots_in_use(9999) == 0


def test_kept_slots_time_out_with_a_clear_error_when_others_hold_them_all():
    with limits.provider_slot(9999, limit=1), limits.ProviderSlots(limit=1, wait=0.3) as slots:
        with pytest.raises(limits.SlotTimeout, match="provider 9999"), slots.hold(9999):
            pass
        assert slots.held(9999) == 0


def test_kept_slots_are_renewed_while_held(settings):
    settings.WEDBACKUP_SLOT_LEASE = 0.6  # renewed every 0.2 s
    with limits.ProviderSlots(limit=2, idle=30) as slots:
        with slots.hold(9999):
            pass
        time.sleep(1.5)  # more than twice the lease: kept but unused, only renewals keep it
        assert limits.slots_in_use(9999) == 1
    assert limits.slots_in_use(9999) == 0
    assert not limits._held


def test_slots_are_refused_after_close():
    slots = limits.ProviderSlots(limit=1)
    slots.close()
    with pytest.raises(RuntimeError, match="after close"), slots.hold(9999):
        pass


def test_a_slot_taken_long_ago_goes_back_to_redis_on_release_however_busy(acquires):
    with limits.ProviderSlots(limit=1, idle=30, keep=0.2) as slots:
        with slots.hold(9999):
            time.sleep(0.3)  # a long put: the slot is older than ``keep`` when it ends
        assert limits.slots_in_use(9999) == 0  # a worker elsewhere may take it now
        assert slots.held(9999) == 0
        with slots.hold(9999):
            pass
        assert limits.slots_in_use(9999) == 1  # young: kept
    assert acquires == [9999, 9999]


def test_a_kept_slot_whose_lease_redis_lost_is_not_used_again(settings, acquires):
    settings.WEDBACKUP_SLOT_LEASE = 0.6  # renewed every 0.2 s
    conn = django_rq.get_connection("default")
    with limits.ProviderSlots(limit=1, idle=30) as slots:
        with slots.hold(9999):
            pass
        conn.delete(limits._key(9999))  # Redis restarted empty, or the lease ran out in an outage
        deadline = time.monotonic() + 5
        while not limits._lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert limits._lost  # the renewer found it gone
        with slots.hold(9999):
            assert limits.slots_in_use(9999) == 1  # a real slot again, counted by Redis
        assert slots.held(9999) == 1
    assert acquires == [9999, 9999]
    assert not limits._held and not limits._lost


def test_a_slot_in_use_when_the_batch_closes_goes_back_when_its_put_ends():
    slots = limits.ProviderSlots(limit=2, idle=30)
    inside, leave = threading.Event(), threading.Event()

    def put():
        with slots.hold(9999):
            inside.set()
            leave.wait()

    thread = threading.Thread(target=put)
    thread.start()
    inside.wait()
    slots.close()  # e.g. the job timed out while a put was running
    assert limits.slots_in_use(9999) == 1
    leave.set()
    thread.join()
    assert limits.slots_in_use(9999) == 0
    assert not limits._held


def test_with_no_idle_time_a_slot_is_never_kept(acquires):
    with limits.ProviderSlots(limit=1, idle=0) as slots:
        for _ in range(3):
            with slots.hold(9999):
                pass
            assert limits.slots_in_use(9999) == 0
        assert not any(t.name == "slot-reaper" for t in threading.enumerate())
    assert acquires == [9999] * 3
