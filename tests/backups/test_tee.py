"""The bounded tee: a large file read once for every target, its sha256 checked on the way, memory bounded,
and a target that falls behind detached to read the file itself (backups/tee.py, issue 18 item 3)."""

import hashlib
import os
import threading
from pathlib import Path

import pytest

from backups import encryption, tee
from backups.tee import Tee
from providers.backends.base import HashingReader, IntegrityError

KIB = 1024
CHUNK = 64 * KIB


@pytest.fixture
def big(tmp_path) -> tuple[Path, bytes]:
    data = os.urandom(10 * CHUNK + 123)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    return path, data


def drain(reader, step: int, out: list, *, stop_after: int | None = None, resume: threading.Event | None = None):
    """Read to the end in ``step``-sized reads; optionally stop after ``stop_after`` bytes until ``resume``."""
    got = bytearray()
    try:
        while chunk := reader.read(step):
            got += chunk
            if stop_after is not None and len(got) >= stop_after and resume is not None and not resume.is_set():
                resume.wait(60)
        out.append(bytes(got))
    except BaseException as exc:  # handed to the test thread
        out.append(exc)


def run_readers(t: Tee, plans: list[dict]) -> list:
    results = [[] for _ in plans]
    threads = [threading.Thread(target=drain, args=(t.reader(), p.pop("step"), results[i]), kwargs=p)
               for i, p in enumerate(plans)]
    for th in threads:
        th.start()
    return threads, results


def test_three_readers_get_the_file_from_one_read_with_a_few_chunks_held(big):
    path, data = big
    t = Tee(path, size=len(data), sha256=hashlib.sha256(data).hexdigest(), chunk=CHUNK, readers=3, patience=60)
    threads, results = run_readers(t, [{"step": CHUNK}, {"step": 1000}, {"step": 3 * CHUNK + 7}])
    for th in threads:
        th.join(60)
    assert [r[0] for r in results] == [data, data, data]
    assert t.stats["file_reads"] == 1 and t.stats["own_reads"] == 0 and t.stats["detached"] == 0
    assert t.stats["peak_chunks"] <= tee.DEPTH  # never the whole file in memory
    assert all(r.finished for r in t._readers) and t.verdict is None


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_reader_that_stops_is_detached_and_finishes_from_the_file_itself(big, encrypted):
    path, data = big
    sha = hashlib.sha256(data).hexdigest()
    key = os.urandom(32)
    expected = encryption.encrypt_bytes(data, key, sha) if encrypted else data
    stored = (key, hashlib.sha256(expected).hexdigest()) if encrypted else None
    t = Tee(path, size=len(data), sha256=sha, chunk=CHUNK, readers=2, encrypt=stored, patience=0.05)
    resume = threading.Event()
    (fast, slow), results = run_readers(t, [{"step": CHUNK}, {"step": 5000, "stop_after": CHUNK + 1, "resume": resume}])
    fast.join(60)  # finishes while the other reader is stopped: it cannot hold it back
    assert not fast.is_alive() and results[0] == [expected] and slow.is_alive()
    resume.set()
    slow.join(60)
    assert results[1] == [expected]  # from the tee's chunks, then the file read on its own, re-encrypted if need be
    assert t.stats["detached"] == 1 and t.stats["own_reads"] == 1 and t.stats["file_reads"] == 1
    assert t.stats["peak_chunks"] <= tee.DEPTH


def test_a_changed_file_fails_every_reader_at_its_end_attached_or_detached(big):
    path, data = big
    t = Tee(path, size=len(data), sha256=hashlib.sha256(b"what was catalogued").hexdigest(), chunk=CHUNK,
            readers=2, patience=0.05)
    resume = threading.Event()
    (fast, slow), results = run_readers(t, [{"step": CHUNK}, {"step": CHUNK, "stop_after": CHUNK, "resume": resume}])
    fast.join(60)
    resume.set()
    slow.join(60)
    assert all(isinstance(r[0], IntegrityError) for r in results)
    assert t.changed() and t.stats["detached"] == 1


def test_a_file_that_grew_is_refused(big):
    path, data = big
    t = Tee(path, size=len(data) - 10, sha256=hashlib.sha256(data[:-10]).hexdigest(), chunk=CHUNK, readers=1)
    out: list = []
    drain(t.reader(), CHUNK, out)
    assert isinstance(out[0], IntegrityError) and t.changed()


def test_hashing_reader_trusts_the_tee_and_drives_its_end_read(big):
    """Backends that stop at the last byte (the watched folder) still get the tee's verdict from check()."""
    path, data = big
    sha = hashlib.sha256(data).hexdigest()
    t = Tee(path, size=len(data), sha256=sha, chunk=CHUNK, readers=1)
    reader = HashingReader(t.reader(), len(data), sha, algos=("md5",))
    assert reader.digest_known
    assert reader.read_exactly(len(data)) == data
    reader.check()
    assert t._readers[0].finished and reader.hexdigest("md5") == hashlib.md5(data).hexdigest()  # noqa: S324

    bad = Tee(path, size=len(data), sha256=hashlib.sha256(b"other").hexdigest(), chunk=CHUNK, readers=1)
    reader = HashingReader(bad.reader(), len(data), bad.sha256)
    assert reader.read_exactly(len(data)) == data
    with pytest.raises(IntegrityError):
        reader.check()
    # A stream vouching for another sha256 than the one expected is hashed as any stream.
    other = Tee(path, size=len(data), sha256=sha, chunk=CHUNK, readers=1)
    assert not HashingReader(other.reader(), len(data), hashlib.sha256(b"x").hexdigest()).digest_known
