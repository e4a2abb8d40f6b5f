"""Scrub runs bounded by bytes and time: chunks are cut by bytes, the budget is checked before every copy, and a run
that stops on its budget is continued by the next one (no copy read twice before every due copy was read once)."""

from __future__ import annotations

import datetime as dt

import django_rq
import pytest
from django.utils import timezone

from backups.models import BackupPolicy, Replica
from protection.scrub import LOCK_KEY, scrub_chunks, scrub_run
from tests.protection.backed_up import backed_up_wedding

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wedding(tmp_path, run_workers, three_folder_providers):
    wedding = backed_up_wedding(tmp_path, run_workers, files=3)
    policy = BackupPolicy.default()
    policy.scrub_days = 1  # every copy is due: one run would read all nine
    policy.save()
    return wedding


def test_chunks_are_cut_by_bytes_and_a_large_copy_is_a_chunk_of_its_own():
    sizes = {1: 5, 2: 5, 3: 20, 4: 1, 5: 1, 6: 1}
    assert list(scrub_chunks(ids=[1, 2, 3, 4, 5, 6], sizes=sizes, limit=10)) == [[1, 2], [3], [4, 5, 6]]
    assert list(scrub_chunks(ids=[4, 5, 6], sizes=sizes, limit=10, most=2)) == [[4, 5], [6]]
    assert list(scrub_chunks(ids=[], sizes=sizes, limit=10)) == []


def test_a_budget_spent_mid_chunk_stops_at_the_next_copy_and_the_next_run_goes_on(wedding, settings):
    settings.WEDBACKUP_SCRUB_CHUNK_BYTES = 10**12  # all nine copies in one chunk
    copies = Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED)
    assert copies.count() == 9
    start = timezone.now()
    for i in range(9):  # a spent budget: each run reads its first copy only, then stops
        run = scrub_run(now=start + dt.timedelta(minutes=i), budget_seconds=0)
        assert run.replicas_checked == 1, run.detail
        assert "time budget" in run.detail["stopped"] and run.detail["not_read"] >= 8 - i
        assert copies.filter(scrubbed_at__isnull=False).count() == i + 1  # a new copy each time, never one again
    stamps = sorted(copies.values_list("scrubbed_at", flat=True))
    assert stamps == [start + dt.timedelta(minutes=i) for i in range(9)]
    assert django_rq.get_connection("default").get(LOCK_KEY) is None  # released after each run


def test_small_chunks_read_everything_within_the_budget(wedding, settings):
    settings.WEDBACKUP_SCRUB_CHUNK_BYTES = 1  # one copy per chunk: nine chunks, nine flushes
    run = scrub_run()
    assert run.replicas_checked == 9 and run.detail["stopped"] == "" and run.detail["not_read"] == 0
    assert run.bytes_read == sum(Replica.objects.filter(asset__wedding=wedding).values_list("size", flat=True))
    assert not Replica.objects.filter(asset__wedding=wedding, scrubbed_at__isnull=True).exists()
