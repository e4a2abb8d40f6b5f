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


def test_no_more_than_the_limit_hold_a_slot_at_once():
    inside, peak, lock = 0, 0, threading.Lock()

    def upload():
        nonlocal inside, peak
        with limits.provider_slot(9999, limit=2, wait=10):
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.05)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 2
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
