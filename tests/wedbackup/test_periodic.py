"""The periodic chains (wedbackup.periodic): one pending tick each, strays stop, work done when due."""

import contextlib
import dataclasses
import datetime as dt
import uuid

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from backups.models import WeddingHealth
from costs.models import CostSnapshot
from providers.health import health_checks_prune
from providers.models import ProviderHealthCheck
from tests.factories import make_asset, make_provider, make_wedding
from wedbackup import periodic


@pytest.fixture
def chain(monkeypatch, settings):
    """The snapshot chain under a marker of its own, so no other test's chain is touched."""
    marker = f"wedbackup:snapshots-test-{uuid.uuid4().hex[:8]}:next-tick"
    test_chain = dataclasses.replace(periodic.SNAPSHOT_CHAIN, marker=marker)
    monkeypatch.setattr(periodic, "SNAPSHOT_CHAIN", test_chain)
    settings.WEDBACKUP_SNAPSHOT_INTERVAL = 300
    queue = django_rq.get_queue("bulk")
    yield test_chain
    for job_id in set(queue.get_job_ids()) | set(ScheduledJobRegistry(queue=queue).get_job_ids()):
        if job_id.startswith(test_chain.prefix):
            with contextlib.suppress(NoSuchJobError):
                Job.fetch(job_id, connection=queue.connection).delete(remove_from_queue=True)
    queue.connection.delete(marker)


def test_scheduling_is_idempotent(chain):
    first = chain.schedule()
    assert chain.schedule() == first
    assert first.startswith(chain.prefix)
    assert django_rq.get_queue("bulk").get_job_ids().count(first) == 1


@pytest.mark.django_db(transaction=True)
def test_a_tick_refreshes_and_schedules_the_next_one(chain):
    wedding = make_wedding()
    make_asset(wedding, size=10)
    first = chain.schedule()
    queue = django_rq.get_queue("bulk")
    django_rq.get_worker("bulk", worker_class=SimpleWorker).work(burst=True, max_jobs=1, with_scheduler=False)
    result = Job.fetch(first, connection=queue.connection).return_value()
    assert result["weddings"] == 1 and "cost_snapshot" in result  # no snapshot yet: the cost model was due
    assert WeddingHealth.objects.get(wedding=wedding).at_risk
    following = queue.connection.get(chain.marker).decode()
    scheduled = ScheduledJobRegistry(queue=queue)
    assert following != first and following in scheduled.get_job_ids()
    assert 290 < scheduled.get_scheduled_time(following).timestamp() - timezone.now().timestamp() <= 300


@pytest.mark.django_db(transaction=True)
def test_a_stray_tick_does_nothing(chain):
    owner = chain.schedule()
    queue = django_rq.get_queue("bulk")
    stray = queue.enqueue(chain.func, job_id=f"{chain.prefix}stray-{uuid.uuid4().hex}")
    queue.remove(owner)
    django_rq.get_worker("bulk", worker_class=SimpleWorker).work(burst=True, max_jobs=1, with_scheduler=False)
    assert Job.fetch(stray.id, connection=queue.connection).return_value() == {"stray": True}
    assert queue.connection.get(chain.marker).decode() == owner


@pytest.mark.django_db
def test_the_cost_model_runs_only_when_its_snapshot_is_old(settings):
    settings.WEDBACKUP_COST_SNAPSHOT_INTERVAL = 3600
    CostSnapshot.objects.create(current_monthly=1, optimised_monthly=1,
                                taken_at=timezone.now() - dt.timedelta(minutes=10))
    assert "cost_snapshot" not in periodic.snapshots_refresh()
    assert "cost_snapshot" in periodic.snapshots_refresh(costs=True)
    CostSnapshot.objects.update(taken_at=timezone.now() - dt.timedelta(hours=2))
    assert "cost_snapshot" in periodic.snapshots_refresh()


@pytest.mark.django_db
def test_old_health_checks_are_dropped(settings):
    settings.WEDBACKUP_HEALTH_RETENTION_DAYS = 30
    provider = make_provider()
    now = timezone.now()
    for days in (0, 29, 31, 90):
        ProviderHealthCheck.objects.create(provider=provider, ok=True, checked_at=now - dt.timedelta(days=days))
    assert health_checks_prune(now=now) == 2
    assert sorted((now - c).days for c in ProviderHealthCheck.objects.values_list("checked_at", flat=True)) == [0, 29]
