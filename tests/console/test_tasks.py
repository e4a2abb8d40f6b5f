"""The console's refresh job (console.tasks): every stored figure, the cost model only when due."""

import datetime as dt

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker

from backups.models import WeddingHealth
from console.tasks import cost_snapshot_due, snapshots_refresh
from costs.models import CostSnapshot
from providers.health import health_checks_prune
from providers.models import ProviderHealthCheck
from tests.factories import make_asset, make_provider, make_wedding


@pytest.mark.django_db(transaction=True)
def test_the_refresh_job_stores_every_weddings_health_when_a_worker_runs_it(rq_queues):
    wedding = make_wedding()
    make_asset(wedding, size=10)
    job = django_rq.get_queue("bulk").enqueue(snapshots_refresh, costs=None)
    django_rq.get_worker("bulk", worker_class=SimpleWorker).work(burst=True, max_jobs=1, with_scheduler=False)
    result = job.latest_result().return_value
    assert result["weddings"] == 1 and "cost_snapshot" in result  # no snapshot yet: the cost model was due
    assert WeddingHealth.objects.get(wedding=wedding).at_risk


@pytest.mark.django_db
def test_the_cost_model_runs_only_when_its_snapshot_is_old(settings):
    settings.WEDBACKUP_COST_SNAPSHOT_INTERVAL = 3600
    CostSnapshot.objects.create(current_monthly=1, optimised_monthly=1,
                                taken_at=timezone.now() - dt.timedelta(minutes=10))
    assert not cost_snapshot_due()
    assert "cost_snapshot" not in snapshots_refresh()
    assert "cost_snapshot" in snapshots_refresh(costs=True)
    CostSnapshot.objects.update(taken_at=timezone.now() - dt.timedelta(hours=2))
    assert cost_snapshot_due()
    assert "cost_snapshot" in snapshots_refresh()
    assert "cost_snapshot" not in snapshots_refresh(costs=False)


@pytest.mark.django_db
def test_old_health_checks_are_dropped(settings):
    settings.WEDBACKUP_HEALTH_RETENTION_DAYS = 30
    provider = make_provider()
    now = timezone.now()
    for days in (0, 29, 31, 90):
        ProviderHealthCheck.objects.create(provider=provider, ok=True, checked_at=now - dt.timedelta(days=days))
    assert health_checks_prune(now=now) == 2
    assert sorted((now - c).days for c in ProviderHealthCheck.objects.values_list("checked_at", flat=True)) == [0, 29]
