"""Hostile names, for every backend (rclone's fstests do the same): characters that mean something in a URL
(``?``, ``#``, ``%``, ``+``, ``&``, ``=``), spaces, names that look already percent-encoded, non-ASCII, and a name
differing only in case. Each must survive put, head, open, list and delete exactly as written.

Case: a backend declares ``case_insensitive`` (Dropbox, Box). There, two names differing only in case (in the
file name or in a folder) would be one object, so writing the second is refused with a PermanentError and the
first is left as it was; everywhere else they are two independent objects. Both behaviours are asserted; neither
is skipped.
"""

from __future__ import annotations

import os

import pytest

from providers.backends.base import PermanentError
from tests.contract.target import ContractTarget
from tests.contract.test_contract import assert_checksums_agree, put_bytes, read_all, sha256, unique_prefix

#: Folder and file names, relative to a fresh prefix. The folders are hostile too, so list(prefix) is tested
#: with a prefix holding the same characters.
HOSTILE_NAMES = (
    "a?b#c/IMG 001 + 50%.jpg",
    "100% sure/plus+sign & eq=1;x.jpg",
    "looks%20encoded/esc%20aped%2Fslash%25%3F.jpg",
    "zoë-åsa/婚礼 💍 ñ Ångström.jpg",
    "q/hash#frag?query=1&b=2.jpg",
    "q/(1) [final] 'ok' @2x! ~$,.jpg",
)


def test_hostile_names_round_trip_through_put_head_open_list_and_delete(target: ContractTarget) -> None:
    backend, root = target.backend, unique_prefix()
    blobs = {f"{root}{name}": os.urandom(1000 + i) for i, name in enumerate(HOSTILE_NAMES)}
    failures: dict[str, str] = {}
    for key, data in blobs.items():
        try:
            info = put_bytes(backend, key, data, content_type="image/jpeg")
            assert info.key == key and info.size == len(data), f"put reported {info.key!r}, {info.size}"
            assert_checksums_agree(info, data)
            head = backend.head(key)
            assert head is not None, "head is None right after put"
            assert (head.key, head.size) == (key, len(data)), f"head reported {head.key!r}, {head.size}"
            assert sha256(read_all(backend, key)) == sha256(data), "open returned other bytes"
        except Exception as exc:  # every name is tried: the report lists all that fail, not the first
            failures[key] = f"{type(exc).__name__}: {exc}"
    assert failures == {}
    assert sorted(o.key for o in backend.list(root)) == sorted(blobs)
    for folder in {k.rsplit("/", 1)[0] + "/" for k in blobs}:
        assert sorted(o.key for o in backend.list(folder)) == sorted(k for k in blobs if k.startswith(folder))
    for key in blobs:
        backend.delete(key)
        assert backend.head(key) is None, f"{key!r} still there after delete"
    assert list(backend.list(root)) == []


@pytest.mark.parametrize("twin", ["file", "folder"])
def test_names_differing_only_in_case_follow_the_declared_capability(target: ContractTarget, twin: str) -> None:
    backend, root = target.backend, unique_prefix()
    first_key = f"{root}Ceremony/IMG_0001.JPG"
    twin_key = f"{root}Ceremony/img_0001.jpg" if twin == "file" else f"{root}ceremony/IMG_0001.JPG"
    first, second = os.urandom(3000), os.urandom(2000)
    put_bytes(backend, first_key, first)
    if backend.case_insensitive:
        # One name there: writing the twin would replace another key's object (and deleting either would
        # remove both), so the put is refused and the first object stays as it was.
        with pytest.raises(PermanentError, match="case"):
            put_bytes(backend, twin_key, second)
        assert read_all(backend, first_key) == first
        assert [o.key for o in backend.list(root)] == [first_key]
        backend.delete(first_key)
        assert backend.head(first_key) is None
    else:
        # Two objects: each keeps its own bytes, both are listed, deleting one leaves the other.
        put_bytes(backend, twin_key, second)
        assert read_all(backend, first_key) == first
        assert read_all(backend, twin_key) == second
        assert sorted(o.key for o in backend.list(root)) == sorted([first_key, twin_key])
        backend.delete(first_key)
        assert backend.head(first_key) is None
        assert read_all(backend, twin_key) == second
