"""One read of a large file for every target: a bounded tee.

A file over the part size is read once, by one thread, in part-size chunks; every target gets a
``TeeReader`` that hands out those same chunks (no copy when a backend asks for a whole chunk). The thread
hashes what it reads and, at the end, checks size and sha256 against the catalogue (and, for an encrypted
copy, the stored form's sha256 too): a reader's end read raises ``IntegrityError`` otherwise, so no target
commits a copy of bytes that changed. The backends' ``HashingReader`` trusts that check instead of hashing
the same bytes once more per target.

Bounded: the thread reads ahead of the slowest attached reader by at most ``depth`` chunks, shared by all
readers. A reader that holds the others back (one of them waits for a chunk the thread may not read yet,
because the slowest is ``depth`` chunks behind) for more than ``patience`` seconds in all is detached: it
goes on by reading the file itself from where it was (its own sha256 carried on from the thread's at that
point), so a slow or throttled target cannot stall the others, and memory stays at ``depth`` chunks plus
the one each reader holds.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

from providers.backends.base import IntegrityError, VerifyingStream

from . import encryption

DEPTH = 2  # chunks read ahead of the slowest attached reader (shared by all readers)
PATIENCE = 0.5  # seconds a reader may hold the others back, in all, before it is detached


class HashingFile:
    """The file's plaintext, hashed and counted as it is read."""

    def __init__(self, fh: Any):
        self._fh, self.digest, self.count = fh, hashlib.sha256(), 0

    def read(self, n: int) -> bytes:
        data = self._fh.read(n)
        self.digest.update(data)
        self.count += len(data)
        return data


class Tee:
    """The reading thread and its ``readers`` pre-made readers (handed out by ``reader()``)."""

    def __init__(self, path: Path, *, size: int, sha256: str, chunk: int, readers: int,
                 encrypt: tuple[bytes, str] | None = None, depth: int | None = None, patience: float | None = None):
        self.path, self.plain_size, self.plain_sha256, self.chunk = path, size, sha256, chunk
        self.encrypt = encrypt  # (data key, stored form's sha256)
        self.size = size + (encryption.OVERHEAD if encrypt else 0)
        self.sha256 = encrypt[1] if encrypt else sha256
        self.depth = depth or DEPTH
        self.patience = PATIENCE if patience is None else patience
        self._cv = threading.Condition()
        self._readers = [TeeReader(self) for _ in range(readers)]
        self._handed = 0
        self._chunks: dict[int, tuple[bytes, int, Any]] = {}  # index -> (bytes, end offset, sha256 after it)
        self._produced = 0
        self._done = False
        self.verdict: BaseException | None = None  # set at the end: None when every check passed
        self._thread: threading.Thread | None = None
        self.stats = {"file_reads": 0, "bytes_read": 0, "peak_chunks": 0, "detached": 0, "own_reads": 0}

    # -- for the engine -------------------------------------------------------------------------
    def reader(self) -> TeeReader:
        """The next target's reader; the thread starts with the first one taken."""
        with self._cv:
            if self._handed >= len(self._readers):
                raise RuntimeError("more readers taken than the tee was made for")
            r = self._readers[self._handed]
            self._handed += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tee", daemon=True)
                self._thread.start()
            return r

    def changed(self) -> bool:
        """Did the thread find the file other than catalogued (size or sha256)?"""
        return isinstance(self.verdict, IntegrityError)

    def close(self) -> None:
        """Detach every reader still attached (taken or not): the thread stops once none is."""
        with self._cv:
            for r in self._readers:
                r._attached = False
            self._cv.notify_all()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the reading thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                self.stats["file_reads"] += 1
                plain = HashingFile(fh)
                stream = encryption.EncryptingReader(plain, self.encrypt[0], self.plain_sha256) \
                    if self.encrypt else plain
                out = hashlib.sha256() if self.encrypt else plain.digest
                offset = 0
                while self._room():
                    data = stream.read(self.chunk)
                    if self.encrypt:  # plain: ``out`` is the plaintext's digest, already updated
                        out.update(data)
                    if not data:
                        self._finish(self._check(plain, out, offset))
                        return
                    if offset + len(data) > self.size:
                        self._finish(IntegrityError(f"{self.path.name} grew beyond the catalogued size"))
                        return
                    offset += len(data)
                    self._publish(data, offset, out.copy())
        except OSError as exc:
            self._finish(exc)
        except BaseException as exc:  # never leave a reader waiting for a thread that died
            self._finish(exc)
            raise
        self._finish(None, stopped=True)

    def _check(self, plain: HashingFile, out: Any, offset: int) -> IntegrityError | None:
        if plain.count != self.plain_size or plain.digest.hexdigest() != self.plain_sha256:
            return IntegrityError(f"{self.path.name} changed on disk since import (size or sha256)")
        if offset != self.size or out.hexdigest() != self.sha256:
            return IntegrityError(f"{self.path.name}: the stored form's sha256 differs from the one declared")
        return None

    def _attached(self) -> list[TeeReader]:
        return [r for r in self._readers if r._attached]

    def _room(self) -> bool:
        """Wait until the next chunk may be read; False once no reader is attached."""
        with self._cv:
            while True:
                attached = self._attached()
                if not attached:
                    return False
                low = min(r._index for r in attached)
                if self._produced - low < self.depth:
                    return True
                if not any(r._waiting and r._index == self._produced for r in attached):
                    self._cv.wait(1.0)  # nobody is held back: the readers are busy sending
                    continue
                laggards = [r for r in attached if r._index == low]
                budget = min(self.patience - r._charged for r in laggards)
                if budget <= 0:
                    for r in laggards:
                        if r._charged >= self.patience:
                            r._attached = False
                            self.stats["detached"] += 1
                    self._cv.notify_all()
                    continue
                began = time.monotonic()
                self._cv.wait(budget)
                for r in laggards:
                    r._charged += time.monotonic() - began

    def _publish(self, data: bytes, end: int, digest: Any) -> None:
        with self._cv:
            self._chunks[self._produced] = (data, end, digest)
            self._produced += 1
            attached = self._attached()
            low = min((r._index for r in attached), default=self._produced)
            for i in [i for i in self._chunks if i < low]:
                del self._chunks[i]
            self.stats["peak_chunks"] = max(self.stats["peak_chunks"], len(self._chunks))
            self.stats["bytes_read"] = end
            self._cv.notify_all()

    def _finish(self, verdict: BaseException | None, *, stopped: bool = False) -> None:
        with self._cv:
            if self._done:
                return
            self._done = True
            self.verdict = verdict
            if stopped:  # no reader attached any more: nothing is kept
                self._chunks.clear()
            self._cv.notify_all()

    def _take(self, r: TeeReader) -> tuple[bytes, int, Any] | None:
        """The reader's next chunk; None at a verified end; raises the thread's verdict or error.
        Returns the reader detached (``_attached`` False) when it fell behind: it then reads on its own."""
        with self._cv:
            while r._attached:
                got = self._chunks.get(r._index)
                if got is not None:
                    r._index += 1
                    r._waiting = False
                    self._cv.notify_all()
                    return got
                if self._done and r._index >= self._produced:
                    r._waiting = False
                    if self.verdict is not None:
                        raise self.verdict
                    return None
                r._waiting = True
                self._cv.notify_all()
                self._cv.wait()
            r._waiting = False
            self._cv.notify_all()
            return ()  # detached


class TeeReader(VerifyingStream):
    """One target's view of the tee: sequential reads only (what every backend's ``put`` does)."""

    def __init__(self, tee: Tee):
        self._tee = tee
        self.size, self.sha256 = tee.size, tee.sha256
        self.finished = False
        self._attached, self._waiting, self._charged, self._index = True, False, 0.0, 0
        self._cur: bytes = b""
        self._pos = 0  # in _cur
        self._mark: tuple[int, Any] = (0, None)  # offset and sha256 state after the last chunk taken
        self._own: Any = None  # the file, read by this reader itself once detached
        self._own_digest: Any = None
        self._offset = 0  # bytes handed out

    @property
    def attached(self) -> bool:
        return self._attached

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self._offset + 1
        if n == 0 or self.finished:
            return b""
        if self._pos >= len(self._cur) and not self._next():
            return b""
        if self._pos == 0 and n >= len(self._cur):  # the whole chunk: the same bytes object, no copy
            data, self._pos = self._cur, len(self._cur)
        else:
            data = self._cur[self._pos:self._pos + n]
            self._pos += len(data)
        self._offset += len(data)
        return data

    def _next(self) -> bool:
        """Load the next chunk into ``_cur``; False at a verified end."""
        if self._own is None:
            got = self._tee._take(self)
            if got is None:
                self.finished = True
                return False
            if got:
                self._cur, self._pos = got[0], 0
                self._mark = (got[1], got[2])
                return True
            self._detach()
        data = self._own.read(self._tee.chunk)
        if data:
            if self._offset + len(data) > self.size:
                raise IntegrityError(f"{self._tee.path.name} grew beyond the catalogued size")
            self._own_digest.update(data)
            self._cur, self._pos = data, 0
            return True
        self._own_close()
        if self._offset != self.size or self._own_digest.hexdigest() != self.sha256:
            raise IntegrityError(f"{self._tee.path.name} changed on disk since import (size or sha256)")
        self.finished = True
        return False

    def _detach(self) -> None:
        """Fell behind (or the tee was closed): go on from the last chunk taken, reading the file itself."""
        offset, digest = self._mark
        tee = self._tee
        fh = open(tee.path, "rb")  # noqa: SIM115 - kept open across reads, closed at the end or by close()
        with tee._cv:
            tee.stats["own_reads"] += 1
        if tee.encrypt:
            stream: Any = encryption.EncryptingReader(fh, tee.encrypt[0], tee.plain_sha256)
            skip = offset
            while skip > 0:  # the stored form is deterministic: re-encrypt up to where this reader was
                got = len(stream.read(min(skip, encryption.CHUNK)))
                if not got:
                    break  # the file shrank: the size and sha256 checks at the end say so
                skip -= got
        else:
            fh.seek(offset)
            stream = fh
        self._own, self._own_fh = stream, fh
        self._own_digest = digest.copy() if digest is not None else hashlib.sha256()

    def _own_close(self) -> None:
        fh = getattr(self, "_own_fh", None)
        if fh is not None:
            fh.close()

    def close(self) -> None:
        """Done with it (put ended, well or not): stop holding the tee back."""
        with self._tee._cv:
            self._attached = False
            self._tee._cv.notify_all()
        self._own_close()

    def __enter__(self) -> TeeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
