"""Stored per-wedding protection and usage (backups.snapshots): same answer as the live query, kept fresh."""

import datetime as dt
import logging

import django_rq
import pytest
from rq.job import Job

from backups import snapshots
from backups.ingest import wedding_import
from backups.models import Replica, WeddingHealth, WeddingUsage
from backups.queries import asset_health, policy_rules
from backups.snapshots import fleet_health_refresh, fleet_summary, wedding_refresh, weddings_refresh
from backups.tasks import backup_start
from backups.verify import wedding_verify
from providers.models import Provider
from tests.factories import make_asset, make_provider, make_wedding
from tests.views import make_replica

pytestmark = pytest.mark.django_db


@pytest.fixture
def us_providers():
    return [make_provider(kind="aws_s3", region="us-east-1"), make_provider(kind="b2", region="us-west-004"),
            make_provider(kind="gcs", region="us-east1")]


def wedding_on(providers, sizes=(100,), **kwargs):
    wedding = make_wedding(**kwargs)
    for size in sizes:
        asset = make_asset(wedding, size=size)
        for p in providers:
            make_replica(asset, p)
    return wedding


def test_the_stored_health_is_the_live_query_summed_per_wedding(us_providers):
    eu = make_provider(kind="azure_blob", region="westeurope")
    weddings = [
        wedding_on(us_providers, sizes=(100, 200)),
        wedding_on(us_providers[:2], sizes=(10, 20, 30)),  # two copies: at risk
        wedding_on(us_providers, country="FR"),  # EU wedding on US providers: at risk
        wedding_on([eu, make_provider(kind="b2", region="eu-central-003")], country="DE"),
        make_wedding(),  # no files
    ]
    mixed = wedding_on(us_providers, sizes=(5, 7))
    make_asset(mixed, size=1000)  # one file not backed up yet
    weddings.append(mixed)
    assert fleet_health_refresh() == len(weddings)
    live = asset_health(policy_rules())
    for wedding in weddings:
        assets = list(live.filter(wedding=wedding))
        health = WeddingHealth.objects.get(wedding=wedding)
        risky = [a for a in assets if a.at_risk]
        assert (health.files, health.bytes) == (len(assets), sum(a.size for a in assets))
        assert health.good_copies == sum(a.good_copies for a in assets)
        assert (health.assets_at_risk, health.bytes_at_risk) == (len(risky), sum(a.size for a in risky))
        assert health.at_risk == bool(risky)
    assert [WeddingHealth.objects.get(wedding=w).at_risk for w in weddings] == [False, True, True, True, False, True]
    summary = fleet_summary()
    assert (summary["weddings"], summary["weddings_at_risk"], summary["weddings_protected"]) == (5, 4, 1)
    assert (summary["assets_at_risk"], summary["bytes_at_risk"]) == (3 + 1 + 1 + 1, 60 + 100 + 100 + 1000)


def test_usage_counts_verified_and_other_replicas_per_provider_and_is_replaced(us_providers):
    wedding = wedding_on(us_providers, sizes=(100, 300))
    make_replica(make_asset(wedding, size=50), us_providers[0], status=Replica.Status.FAILED)
    wedding_refresh(wedding)
    usage = {u.provider_id: (u.verified_replicas, u.other_replicas, u.verified_bytes)
             for u in WeddingUsage.objects.filter(wedding=wedding)}
    assert usage == {us_providers[0].pk: (2, 1, 400), us_providers[1].pk: (2, 0, 400), us_providers[2].pk: (2, 0, 400)}
    Replica.objects.filter(provider=us_providers[2]).delete()
    wedding_refresh(wedding)
    assert set(WeddingUsage.objects.filter(wedding=wedding).values_list("provider_id", flat=True)) == {
        us_providers[0].pk, us_providers[1].pk}
    assert WeddingHealth.objects.get(wedding=wedding).at_risk  # two copies left


def test_refreshing_some_weddings_leaves_the_others_alone(us_providers):
    first, second = wedding_on(us_providers), wedding_on(us_providers)
    fleet_health_refresh()
    before = WeddingHealth.objects.get(wedding=second).refreshed_at
    Replica.objects.all().delete()
    assert weddings_refresh([first.pk]) == 1
    assert WeddingHealth.objects.get(wedding=first).at_risk
    second_health = WeddingHealth.objects.get(wedding=second)
    assert not second_health.at_risk and second_health.refreshed_at == before


def test_a_failed_refresh_is_logged_and_never_fails_the_job(us_providers, monkeypatch, caplog):
    wedding = wedding_on(us_providers)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(snapshots, "_health_rows", broken)
    with caplog.at_level(logging.ERROR, logger="backups.snapshots"):
        wedding_refresh(wedding)
    assert "refreshing the stored health" in caplog.text
    assert not WeddingHealth.objects.filter(wedding=wedding).exists()


def test_a_provider_status_change_schedules_one_fleet_refresh(us_providers, rq_queues):
    from backups.snapshots import fleet_health_soon
    from providers.health import provider_status_sync

    assert provider_status_sync(provider_id=us_providers[0].pk, status=Provider.Status.DOWN)
    assert provider_status_sync(provider_id=us_providers[1].pk, status=Provider.Status.DOWN)
    queue = django_rq.get_queue("bulk")
    scheduled = [j for j in queue.scheduled_job_registry.get_job_ids() if j.startswith("wedbackup-soon-fleet-health")]
    assert len(scheduled) == 1  # two changes, one refresh
    job = Job.fetch(scheduled[0], connection=queue.connection)
    assert job.func_name == "backups.snapshots.fleet_health_refresh"
    assert fleet_health_soon() == scheduled[0]
    job.set_status("started")  # once it runs, a new change needs a run of its own, under a new id
    again = fleet_health_soon()
    assert again not in ("", scheduled[0]) and again in queue.scheduled_job_registry.get_job_ids()
    assert not provider_status_sync(provider_id=us_providers[1].pk, status=Provider.Status.DOWN)  # no change


@pytest.mark.django_db(transaction=True)
def test_import_backup_and_verify_keep_the_weddings_health_current(tmp_path, run_workers, three_folder_providers):
    src = tmp_path / "wedding"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"\xff\xd8\xff" + b"photo" * 100)
    (src / "b.pdf").write_bytes(b"%PDF-1.4 contract")
    wedding = wedding_import(path=src, couple="Ana & Ben", date=dt.date(2024, 6, 1), country="US").wedding
    health = WeddingHealth.objects.get(wedding=wedding)
    assert (health.files, health.at_risk, health.good_copies) == (2, True, 0)  # imported, not backed up yet

    backup_start(wedding=wedding)
    run_workers()
    health.refresh_from_db()
    assert (health.files, health.at_risk, health.good_copies) == (2, False, 6)
    assert WeddingUsage.objects.filter(wedding=wedding).count() == 3

    victim = next((tmp_path / "t1").rglob("b.pdf"))
    victim.write_bytes(b"%PDF-1.4 rot")
    assert wedding_verify(wedding=wedding, deep=True).mismatched
    health.refresh_from_db()
    assert (health.at_risk, health.assets_at_risk) == (True, 1)
    run_workers()  # the repair job
    health.refresh_from_db()
    assert not health.at_risk
