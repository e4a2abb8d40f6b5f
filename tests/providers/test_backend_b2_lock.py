"""B2 File Lock on b2sdk's simulator: files written locked survive an overwrite and a delete made with the app's own
key, the verified version stays readable, locks are extended and never shortened, deletes only hide."""

import datetime as dt
import hashlib
import io

import pytest
from b2sdk.v2 import exception as b2exc

from providers.backends.base import PermanentError

LOCKED = "wedbackup-locked"


@pytest.fixture
def locked(b2_sim):
    b2_sim.api.create_bucket(LOCKED, "allPrivate", is_file_lock_enabled=True)
    return b2_sim.backend(bucket=LOCKED, options={"object_lock_mode": "governance"})


def put(backend, key, data, **kwargs):
    return backend.put(key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(), **kwargs)


def test_ransomware_with_our_key_cannot_remove_a_locked_version(locked, b2_sim):
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    info = put(locked, "weddings/x/photo/a.jpg", b"\xff\xd8\xff the first dance", retain_until=until)
    bucket = b2_sim.api.get_bucket_by_name(LOCKED)
    bucket.upload_bytes(b"ENCRYPTED BY RANSOMWARE", "weddings/x/photo/a.jpg")  # the same key, our credentials
    bucket.hide_file("weddings/x/photo/a.jpg")
    with pytest.raises(b2exc.AccessDenied):
        b2_sim.api.delete_file_version(info.version_id, "weddings/x/photo/a.jpg")
    with locked.open_version("weddings/x/photo/a.jpg", info.version_id) as fh:
        assert fh.read() == b"\xff\xd8\xff the first dance"


def test_locks_are_extended_never_shortened_and_deletes_only_hide(locked, b2_sim):
    now = dt.datetime.now(dt.UTC)
    info = put(locked, "weddings/x/a.pdf", b"%PDF contract", retain_until=now + dt.timedelta(days=10))
    locked.retention_extend("weddings/x/a.pdf", info.version_id, now + dt.timedelta(days=40))
    retention = b2_sim.api.get_file_info(info.version_id).file_retention
    assert retention.retain_until == int((now + dt.timedelta(days=40)).timestamp() * 1000)
    locked.retention_extend("weddings/x/a.pdf", info.version_id, now + dt.timedelta(days=5))  # shorter: ignored
    assert b2_sim.api.get_file_info(info.version_id).file_retention.retain_until == retention.retain_until
    locked.delete("weddings/x/a.pdf")
    assert locked.head("weddings/x/a.pdf") is None  # hidden
    with locked.open_version("weddings/x/a.pdf", info.version_id) as fh:
        assert fh.read() == b"%PDF contract"  # the version is kept


def test_a_lock_is_refused_where_the_provider_has_none(b2_sim):
    plain = b2_sim.backend()
    with pytest.raises(PermanentError, match="object_lock_mode"):
        put(plain, "weddings/x/b.jpg", b"x", retain_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert plain.head("weddings/x/b.jpg") is None
