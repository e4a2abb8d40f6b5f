"""uploads.replicas_write: the batch's verified rows in one statement, every field as the model would store it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DataError, connection
from django.test.utils import CaptureQueriesContext

from backups.models import Replica
from backups.uploads import BatchBook, replicas_write
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db


def test_it_writes_every_field_of_every_row_in_one_statement_and_nothing_else():
    wedding = make_wedding()
    providers = [make_provider(), make_provider()]
    assets = [make_asset(wedding) for _ in range(3)]
    rows = [Replica.objects.create(asset=a, provider=p, object_key=f"k/{a.pk}", status="uploading", reason="why")
            for a in assets for p in providers]
    untouched = rows.pop()
    when = dt.datetime(2026, 11, 29, 10, 0, 1, 123456, tzinfo=dt.UTC)
    for i, r in enumerate(rows):
        r.status, r.size, r.checksums, r.sha256 = "verified", 2**40 + i, {"sha256": f"{i:064x}", "md5": "ab"}, "f" * 64
        r.storage_class, r.version_id, r.etag = "INTELLIGENT_TIERING", "" if i % 2 else f"v{i}", f'e"{i}'
        r.verified_at, r.last_error, r.permanent_failure = when + dt.timedelta(seconds=i), "", bool(i % 2)
        r.region, r.updated = "eu-central-1 ✓", when
    with CaptureQueriesContext(connection) as queries:
        replicas_write(rows, BatchBook.FIELDS)
    assert len(queries) == 1
    for r in rows:
        stored = Replica.objects.get(pk=r.pk)
        assert {f: getattr(stored, f) for f in BatchBook.FIELDS} == {f: getattr(r, f) for f in BatchBook.FIELDS}
        assert (stored.object_key, stored.reason) == (r.object_key, "why")  # fields not named stay as they were
    stored = Replica.objects.get(pk=untouched.pk)
    assert (stored.status, stored.size, stored.checksums, stored.verified_at) == ("uploading", 0, {}, None)


def _uploading_row() -> Replica:
    return Replica.objects.create(asset=make_asset(make_wedding()), provider=make_provider(), object_key="k",
                                  status="uploading")


def _as_verified(r: Replica, **changes) -> Replica:
    now = dt.datetime.now(dt.UTC)
    r.status, r.sha256, r.verified_at, r.updated = "verified", "a" * 64, now, now
    for name, value in changes.items():
        setattr(r, name, value)
    return r


def test_a_row_pruned_meanwhile_is_not_brought_back_as_verified():
    kept, pruned = _uploading_row(), _uploading_row()
    Replica.objects.filter(pk=pruned.pk).update(status="deleting")  # repair pruned it while the upload ran
    replicas_write([_as_verified(kept), _as_verified(pruned)], BatchBook.FIELDS)
    assert Replica.objects.get(pk=kept.pk).status == "verified"
    assert Replica.objects.get(pk=pruned.pk).status == "deleting"


def test_a_value_too_long_for_its_column_is_refused_not_cut_short():
    r = _uploading_row()
    with pytest.raises(DataError):
        replicas_write([_as_verified(r, version_id="v" * 300)], BatchBook.FIELDS)
