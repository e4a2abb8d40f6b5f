"""The demo `make run` loads: a small real fleet on the local servers, backed up by real workers, with older
weddings left as a naive setup would have, so the optimiser has real savings to propose; loaded twice, once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from backups.models import Asset, BackupJob, Replica, Wedding
from backups.planning import asset_gaps
from console.demo_fleet import NAIVE_BEFORE_DAYS, demo_fleet_load, demo_weddings_ensure
from costs.models import CostSnapshot, Optimization
from costs.snapshots import cost_latest
from providers.backends import backend_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.servers]
WEDDINGS = 20


def _counts() -> dict:
    return {"weddings": Wedding.objects.count(), "assets": Asset.objects.count(),
            "replicas": Replica.objects.count(), "jobs": BackupJob.objects.count()}


def test_the_demo_fleet_is_really_backed_up_and_has_savings_to_propose(tmp_path, demo_providers, run_workers):
    weddings = demo_weddings_ensure(var_dir=tmp_path, count=WEDDINGS, files=0.5)
    report = demo_fleet_load(weddings=weddings, jobs_wait=lambda jobs: run_workers())
    assert report.jobs_not_succeeded == []
    # The GCS emulator does not change an object's class (real GCS does): only its copies may stay cool.
    assert {f.split(" ")[0] for f in report.class_changes_failed} <= {"gcs-us-central", "gcs-europe-west"}
    weddings = list(Wedding.objects.all())
    assert len(weddings) == WEDDINGS == report.backed_up
    assert {w.plan for w in weddings} == {"standard", "premium", "cost-saver"}
    assert {w.residency_zone for w in weddings} == {"EU", "US"}
    assert sum(w.wedding_day_critical for w in weddings) == 1
    assert (max(w.date for w in weddings) - min(w.date for w in weddings)).days > 2 * 365
    assets = Asset.objects.all()
    assert {a.kind for a in assets} == {"photo", "raw_photo", "video", "document"}
    photos = [a for a in assets if a.kind == "photo"]
    assert all(a.captured_at and a.width for a in photos) and len({a.megapixels for a in photos}) >= 3
    assert sum(a.size for a in assets) < 40 * 1024 * 1024

    # Every asset meets its policy with verified copies, and each copy is on its provider as recorded.
    assert all(asset_gaps(w) == {} for w in weddings)
    assert not Replica.objects.exclude(status=Replica.Status.VERIFIED).exists()
    backends = {p.pk: backend_for(p) for p in demo_providers}
    for replica in Replica.objects.select_related("asset"):
        info = backends[replica.provider_id].head(replica.object_key)
        assert info is not None and info.size == replica.size == replica.asset.size, replica

    # The naive setup: older weddings on the big clouds only, in hot classes; recent ones anywhere.
    naive = [w for w in weddings if (timezone.localdate() - w.date).days > NAIVE_BEFORE_DAYS]
    naive_copies = Replica.objects.filter(asset__wedding__in=naive)
    classes = set(naive_copies.exclude(provider__kind="gcs").values_list("storage_class", flat=True))
    assert len(naive) >= WEDDINGS // 2 and classes <= {"STANDARD", "Hot"}
    assert not naive_copies.filter(provider__kind__in=["wasabi", "watched_folder"]).exists()
    assert report.made_hot > 0

    proposals = Optimization.objects.filter(status=Optimization.Status.PROPOSED)
    assert {o.kind for o in proposals} >= {"lifecycle"}
    assert sum((o.monthly_saving for o in proposals), Decimal(0)) > 0
    latest = cost_latest()
    # The stored snapshot counts the applicable proposals; the advisory ones (compression) come on top.
    assert latest["saving"] > 0 and 0 < latest["proposals"] <= report.proposals == proposals.count()
    assert CostSnapshot.objects.count() == report.history + 1 and report.history >= 10

    before = _counts()
    again = demo_fleet_load(weddings=demo_weddings_ensure(var_dir=tmp_path, count=WEDDINGS, files=0.5),
                            jobs_wait=lambda jobs: run_workers())
    assert again.backed_up == 0 and _counts() == before
