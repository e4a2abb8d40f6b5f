"""Failover: staff actions and their audit trail, one event and one e-mail per outage, released work."""

import datetime as dt

import pytest
from django.utils import timezone

from backups.failover import (
    DEFAULT_THROUGHPUT,
    estimate_seconds,
    failover_begin,
    failover_end,
    provider_mark_down,
    provider_mark_up,
    provider_probe_now,
)
from backups.models import AuditEvent, BackupJob, Replica
from providers.breaker import CLOSED, OPEN, breaker_record
from providers.models import FailoverEvent, Provider
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def notify(settings):
    settings.WEDBACKUP_NOTIFY_EMAILS = ["ops@example.com", "owner@example.com"]


def replica(asset, provider, status, **kwargs):
    return Replica.objects.create(asset=asset, provider=provider, object_key=f"weddings/x/{asset.pk}", status=status,
                                  size=asset.size, **kwargs)


# -- staff actions ----------------------------------------------------------------------------------------
def test_mark_down_drains_the_provider_and_is_audited(folder_provider, breakers, staff_user, notify, mailoutbox):
    provider = folder_provider(credentials={"secret_access_key": SECRET})
    event = provider_mark_down(provider=provider, by=staff_user, reason="planned maintenance")
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DRAINING
    assert not provider.accepts_work
    assert event.trigger == FailoverEvent.Trigger.MANUAL
    assert event.reason == "planned maintenance"
    audit = AuditEvent.objects.get(action="provider.mark_down")
    assert (audit.actor, audit.actor_label, audit.target) == (staff_user, "staff", f"provider:{provider.name}")
    assert audit.details == {"reason": "planned maintenance", "previous_status": "active",
                             "failover_event": event.pk}
    assert len(mailoutbox) == 1
    assert SECRET not in mailoutbox[0].body and SECRET not in str(audit.details)


def test_mark_up_brings_it_back_resolves_the_event_and_is_audited(folder_provider, breakers, staff_user):
    provider = folder_provider()
    for _ in range(3):
        breaker_record(provider.pk, False, "TransientError: timeout")
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DOWN
    provider_mark_down(provider=provider, by=staff_user)
    event = provider_mark_up(provider=provider, by=staff_user)
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE
    assert breakers.get(provider.pk).state == CLOSED
    assert event.resolved_at is not None
    assert FailoverEvent.objects.filter(provider=provider).count() == 1  # marking down joined the outage
    audit = AuditEvent.objects.get(action="provider.mark_up")
    assert audit.details == {"previous_status": "draining", "failover_event": event.pk}
    assert audit.actor == staff_user


def test_the_monitor_does_not_undo_a_mark_down(folder_provider, breakers, staff_user):
    from providers.health import health_check_all

    provider = folder_provider()
    provider_mark_down(provider=provider, by=staff_user)
    health_check_all()
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DRAINING
    assert FailoverEvent.objects.get(provider=provider).resolved_at is None


def test_probe_now_is_audited_and_closes_an_open_breaker_at_once(folder_provider, breakers, staff_user):
    provider = folder_provider()
    for _ in range(3):
        breaker_record(provider.pk, False, "TransientError: timeout")
    assert breakers.get(provider.pk).state == OPEN  # cool-down of 30 s not over
    check = provider_probe_now(provider=provider, by="cli:alice")
    assert check.ok
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE
    audit = AuditEvent.objects.get(action="provider.probe")
    assert (audit.actor, audit.actor_label) == (None, "cli:alice")
    assert audit.details["ok"] is True and audit.details["status"] == "active"


# -- automatic failover ---------------------------------------------------------------------------------
def test_one_event_and_one_email_per_outage(folder_provider, breakers, notify, mailoutbox, settings):
    from providers.health import health_check_all

    provider = folder_provider()
    for _ in range(10):
        breaker_record(provider.pk, False, "TransientError: 503 Slow Down")
    health_check_all()  # reconciling finds the event already there
    failover_begin(provider=provider, trigger=FailoverEvent.Trigger.AUTOMATIC, reason="again")
    assert FailoverEvent.objects.filter(provider=provider).count() == 1
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["ops@example.com", "owner@example.com"]
    assert provider.name in mail.subject
    assert "503 Slow Down" in mail.body
    assert FailoverEvent.objects.get(provider=provider).notified_at is not None

    settings.WEDBACKUP_BREAKER_COOLDOWN = 0
    health_check_all()  # the trial succeeds: the outage is over
    assert FailoverEvent.objects.get(provider=provider).resolved_at is not None
    for _ in range(3):
        breaker_record(provider.pk, False, "TransientError: timeout")
    assert FailoverEvent.objects.filter(provider=provider).count() == 2  # a new outage, a new event
    assert len(mailoutbox) == 2


def test_no_recipients_no_mail(folder_provider, breakers, mailoutbox, settings):
    settings.WEDBACKUP_NOTIFY_EMAILS = []
    provider = folder_provider()
    event = failover_begin(provider=provider, trigger=FailoverEvent.Trigger.AUTOMATIC, reason="x")
    assert mailoutbox == []
    assert event.notified_at is None


def test_queued_work_is_released_and_every_affected_wedding_gets_a_round(folder_provider, breakers, notify,
                                                                         mailoutbox):
    down, other = folder_provider(), folder_provider()
    today = timezone.localdate()
    critical = make_wedding(date=today)  # wedding day: first, on the critical queue
    recent = make_wedding(date=today - dt.timedelta(days=30))
    untouched = make_wedding(date=today - dt.timedelta(days=60))
    planned = replica(make_asset(recent, data=b"a" * 1000), down, Replica.Status.PLANNED)
    uploading = replica(make_asset(critical, data=b"b" * 2000), down, Replica.Status.UPLOADING)
    verified = replica(make_asset(recent, data=b"c" * 3000), down, Replica.Status.VERIFIED)
    elsewhere = replica(make_asset(untouched, data=b"d" * 4000), other, Replica.Status.PLANNED)

    event = failover_begin(provider=down, trigger=FailoverEvent.Trigger.AUTOMATIC, reason="circuit opened")

    for r in (planned, uploading):
        r.refresh_from_db()
        assert (r.status, r.last_error, r.permanent_failure) == (Replica.Status.FAILED, Replica.REDIRECTED, False)
    verified.refresh_from_db()
    elsewhere.refresh_from_db()
    assert verified.status == Replica.Status.VERIFIED
    assert elsewhere.status == Replica.Status.PLANNED
    assert (event.affected_weddings, event.affected_assets) == (2, 3)
    jobs = list(BackupJob.objects.order_by("pk"))
    assert [(j.wedding_id, j.kind, j.queue) for j in jobs] == [
        (critical.pk, BackupJob.Kind.FAILOVER, "critical"), (recent.pk, BackupJob.Kind.FAILOVER, "default")]
    assert [w["id"] for w in event.redirected["weddings"]] == [critical.pk, recent.pk]
    assert event.redirected["released_replicas"] == 2
    assert event.redirected["bytes_to_copy"] == 6000
    assert event.redirected["bytes_queued"] == 4000
    assert event.estimated_seconds == pytest.approx(10000 / DEFAULT_THROUGHPUT, abs=0.1)
    assert critical.slug in mailoutbox[0].body


def test_the_end_of_an_outage_records_where_work_went_and_starts_repair(folder_provider, breakers):
    down, alternate = folder_provider(), folder_provider()
    wedding = make_wedding()
    asset = make_asset(wedding)
    replica(asset, down, Replica.Status.PLANNED)
    event = failover_begin(provider=down, trigger=FailoverEvent.Trigger.AUTOMATIC, reason="circuit opened")
    replica(asset, alternate, Replica.Status.VERIFIED, temporary=True, verified_at=timezone.now())
    BackupJob.objects.filter(kind=BackupJob.Kind.FAILOVER).update(
        status=BackupJob.Status.SUCCEEDED, finished_at=event.started_at + dt.timedelta(seconds=42))

    event = failover_end(provider=down)
    assert event.resolved_at is not None
    assert event.actual_seconds == pytest.approx(42, abs=0.1)  # the time back to policy, not the outage
    assert event.redirected["to"] == {alternate.name: {"assets": 1, "bytes": asset.size, "temporary": 1}}
    repair = BackupJob.objects.get(kind=BackupJob.Kind.REPAIR)
    assert repair.wedding == wedding
    assert event.redirected["repair_jobs"] == [repair.pk]
    assert failover_end(provider=down) is None  # nothing open any more


def test_weddings_backed_up_during_the_outage_are_repaired_too(folder_provider, breakers):
    down, alternate = folder_provider(), folder_provider()
    failover_begin(provider=down, trigger=FailoverEvent.Trigger.AUTOMATIC, reason="down before any work")
    newcomer = make_wedding()
    replica(make_asset(newcomer), alternate, Replica.Status.VERIFIED, temporary=True, verified_at=timezone.now())
    make_wedding()  # nothing temporary: no repair
    event = failover_end(provider=down)
    assert [j.wedding_id for j in BackupJob.objects.filter(kind=BackupJob.Kind.REPAIR)] == [newcomer.pk]
    assert event.redirected["to"][alternate.name]["temporary"] == 1


def test_estimate_counts_the_queue_ahead_and_the_re_copies():
    assert estimate_seconds(bytes_to_copy=600, bytes_queued=400, throughput_bps=100) == 10
    assert estimate_seconds(bytes_to_copy=1, bytes_queued=0, throughput_bps=0) == 1  # never divides by zero


def test_the_provider_row_and_the_audit_never_hold_secrets(breakers, staff_user):
    provider = make_provider(kind="watched_folder", bucket="/nonexistent/wedbackup-test", credentials={"k": SECRET})
    check = provider_probe_now(provider=provider, by=staff_user)
    assert not check.ok
    assert SECRET not in check.error
    assert SECRET not in str(AuditEvent.objects.get(action="provider.probe").details)
