"""rebuild_catalog on the demo fleet `make run` loads (eight providers on the local servers, a naive setup made hot
after its backup): every wedding rebuilt, every copy verified by a HEAD, from the manifests alone."""

from __future__ import annotations

import pytest

from backups.models import Asset, BackupJob, Replica, Wedding
from backups.rebuild import catalog_rebuild
from console.demo_fleet import demo_fleet_load, demo_weddings_ensure

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.servers]


def test_the_demo_fleet_is_rebuilt_with_every_copy_verified(tmp_path, demo_providers, run_workers):
    weddings = demo_weddings_ensure(var_dir=tmp_path, count=6, files=0.3)
    assert demo_fleet_load(weddings=weddings, jobs_wait=lambda jobs: run_workers()).jobs_not_succeeded == []
    before = sorted(Replica.objects.filter(status="verified").values_list(
        "asset__wedding__slug", "asset__relative_path", "asset__sha256", "provider__name", "object_key"))
    slugs = sorted(Wedding.objects.values_list("slug", flat=True))
    Replica.objects.all().delete()
    BackupJob.objects.all().delete()
    Wedding.objects.all().delete()
    assert not Asset.objects.exists()

    report = catalog_rebuild()
    assert sorted(report.weddings) == slugs
    assert report.replicas_unverified == report.skipped == report.unreachable == []
    assert report.replicas_verified == len(before)
    assert sorted(Replica.objects.filter(status="verified").values_list(
        "asset__wedding__slug", "asset__relative_path", "asset__sha256", "provider__name", "object_key")) == before
