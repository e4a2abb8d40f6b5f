"""The wedding page tells its story: each kind of event from the record it leaves, newest first, only this wedding's,
a bounded number of queries whatever the history, a cursor to older events; and the next scheduled runs."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups.audit import audit_record
from backups.models import BackupJob, Replica
from console.timeline import wedding_next_runs, wedding_timeline
from costs.models import Optimization
from protection.models import Drill, Schedule
from providers.models import FailoverEvent
from tests.factories import make_asset, make_provider, make_wedding
from tests.views import make_replica

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def ago(hours: float) -> dt.datetime:
    return NOW - dt.timedelta(hours=hours)


@pytest.fixture
def wedding():
    return make_wedding(couple="Ana & Ben", source_path="/srv/weddings/ana-ben")


def kinds(wedding, **kwargs) -> list[tuple[str, str]]:
    return [(e.kind, e.title) for e in wedding_timeline(wedding=wedding, **kwargs).events]


def test_files_catalogued_are_grouped_by_day(wedding):
    for _ in range(3):
        make_asset(wedding)
    events = wedding_timeline(wedding=wedding).events
    assert [(e.kind, e.title) for e in events] == [("import", "3 files catalogued")]


def test_jobs_show_their_kind_outcome_and_who_asked(wedding, staff_user):
    BackupJob.objects.create(wedding=wedding, kind="backup", status="succeeded", files_planned=40, files_done=40)
    BackupJob.objects.create(wedding=wedding, kind="verify", status="partial", files_planned=40, files_done=39,
                             files_failed=1, error_summary="IMG_1.jpg on s3: sha256 differs", requested_by=staff_user)
    BackupJob.objects.create(wedding=wedding, kind="failover", status="running")
    BackupJob.objects.create(wedding=make_wedding(), kind="backup", status="failed")  # another wedding's
    events = wedding_timeline(wedding=wedding).events
    assert [(e.kind, e.outcome) for e in events] == [("failover", "running"), ("verify", "partial"),
                                                     ("backup", "succeeded")]
    verify = events[1]
    assert verify.actor == staff_user.username and verify.detail == \
        "39 of 40 files, 1 failed: IMG_1.jpg on s3: sha256 differs"


def test_downloads_rehydrations_restores_and_deletes_come_from_the_audit(wedding, staff_user):
    asset = make_asset(wedding, relative_path="ceremony/vows.jpg")
    replica = make_replica(asset, make_provider(name="s3"))
    audit_record(by=staff_user, action="asset.download", target=f"asset:{wedding.slug}/ceremony/vows.jpg",
                 details={"provider": "s3", "fallbacks": 1})
    audit_record(by=staff_user, action="wedding.restore", target=f"wedding:{wedding.slug}", details={"to": "/srv/r"})
    Replica.objects.filter(pk=replica.pk).update(status="deleted")  # as the guarded delete leaves it
    audit_record(by="system", action="replica.delete", target=f"replica:{replica.pk}",
                 details={"provider": "s3", "key": replica.object_key, "reason": "prune temporary copy"})
    other = make_wedding(couple="Cy & Di")
    audit_record(by=staff_user, action="asset.download", target=f"asset:{other.slug}/ceremony/vows.jpg")
    audit_record(by=staff_user, action="policy.change", target="policy:default")
    events = wedding_timeline(wedding=wedding).events
    titles = [(e.kind, e.title) for e in events if e.kind != "import"]
    assert titles == [("delete", "A copy was deleted (guarded)"),
                      ("restore", "Restore into a server folder requested"),
                      ("fetch", "Downloaded ceremony/vows.jpg")]
    fetch = next(e for e in events if e.kind == "fetch")
    assert fetch.detail == "from s3 after 1 failed copy" and fetch.actor == staff_user.username
    assert next(e for e in events if e.kind == "delete").detail == "ceremony/vows.jpg on s3: prune temporary copy"


def test_an_outage_that_moved_this_weddings_copies_is_shown_with_its_duration(wedding):
    provider = make_provider(name="b2")
    FailoverEvent.objects.create(provider=provider, trigger="automatic", reason="5 probes failed",
                                 started_at=ago(3), resolved_at=ago(1),
                                 redirected={"weddings": [{"id": wedding.pk, "slug": wedding.slug}]})
    FailoverEvent.objects.create(provider=provider, trigger="manual", reason="drain", started_at=ago(5),
                                 redirected={"weddings": [{"id": make_wedding().pk}]})
    events = wedding_timeline(wedding=wedding).events
    assert [(e.kind, e.outcome) for e in events] == [("failover", "resolved")]
    assert events[0].title.startswith("b2 went down (automatic)") and events[0].detail.endswith("back after 2 h 0 min")


def test_applied_cost_moves_scrubs_and_failed_drills_on_its_files(wedding):
    Optimization.objects.create(wedding=wedding, kind="lifecycle", status="applied", summary="42 photos to Glacier IR",
                                current_monthly=2, new_monthly=1, applied_at=ago(2))
    Optimization.objects.create(wedding=wedding, kind="provider_mix", summary="not applied", current_monthly=2,
                                new_monthly=1)
    asset = make_asset(wedding, relative_path="ceremony/IMG_9.jpg")
    provider = make_provider(name="gcs")
    make_replica(asset, provider, scrubbed_at=ago(4))
    make_replica(asset, make_provider(name="azure"), scrubbed_at=ago(4.5))
    Drill.objects.create(provider=provider, started_at=ago(6), ok=False,
                         failures=[{"path": f"{wedding.slug}/ceremony/IMG_9.jpg", "reason": "sha256 differs"},
                                   {"path": "someone-else/a.jpg", "reason": "missing"}])
    Drill.objects.create(provider=provider, started_at=ago(7), ok=False,
                         failures=[{"path": f"x-{wedding.slug}/ceremony/IMG_9.jpg", "reason": "missing"}])
    events = [e for e in wedding_timeline(wedding=wedding).events if e.kind != "import"]
    assert [(e.kind, e.title) for e in events] == [
        ("cost move", "Lifecycle applied"),
        ("scrub", "Scrub read back 2 copies and matched their sha256"),
        ("drill", "Restore drill on gcs failed on 1 of its files"),
    ]
    assert events[2].detail == "ceremony/IMG_9.jpg"


def test_newest_first_capped_with_a_cursor_to_the_older_events(wedding):
    jobs = [BackupJob.objects.create(wedding=wedding, kind="backup", status="succeeded") for _ in range(7)]
    for i, job in enumerate(jobs):
        BackupJob.objects.filter(pk=job.pk).update(created=ago(10 - i))
    first = wedding_timeline(wedding=wedding, limit=5)
    assert [e.title for e in first.events] == [f"Backup job #{j.pk}" for j in reversed(jobs[2:])]
    assert first.more == first.events[-1].at
    second = wedding_timeline(wedding=wedding, before=first.more, limit=5)
    assert [e.title for e in second.events] == [f"Backup job #{j.pk}" for j in reversed(jobs[:2])]
    assert second.more is None


def test_the_number_of_queries_does_not_grow_with_the_history(wedding, staff_user):
    def add(n):
        provider = make_provider()
        for _ in range(n):
            asset = make_asset(wedding)
            make_replica(asset, provider, scrubbed_at=ago(1))
            BackupJob.objects.create(wedding=wedding, kind="backup", status="succeeded", requested_by=staff_user)
            audit_record(by=staff_user, action="asset.download", target=f"asset:{wedding.slug}/{asset.relative_path}")

    add(3)
    with CaptureQueriesContext(connection) as few:
        wedding_timeline(wedding=wedding)
    add(60)
    with CaptureQueriesContext(connection) as many:
        page = wedding_timeline(wedding=wedding)
    assert len(many.captured_queries) == len(few.captured_queries) <= 9
    assert len(page.events) == 25 and page.more is not None


def test_next_backup_and_verification_come_from_the_schedules(wedding):
    Schedule.objects.all().delete()
    scan = Schedule.objects.create(task="source_scan", plan=wedding.plan, interval_minutes=60, next_run_at=ago(-0.5))
    Schedule.objects.create(task="source_scan", plan="", interval_minutes=240, next_run_at=ago(-2))
    Schedule.objects.create(task="source_scan", plan="premium", interval_minutes=5, next_run_at=ago(-0.1))
    scrub = Schedule.objects.create(task="scrub", interval_minutes=60, next_run_at=ago(-0.7))
    runs = wedding_next_runs(wedding=wedding)
    assert runs["backup"] == scan and runs["watch"] == "rescanned every 1 hour" and runs["scrub"] == scrub
    Schedule.objects.filter(pk=scan.pk).update(interval_minutes=90)
    assert wedding_next_runs(wedding=wedding)["watch"] == "rescanned every 90 minutes"
    wedding.watch_source = False
    assert wedding_next_runs(wedding=wedding)["backup"] is None


def test_the_wedding_page_shows_the_timeline_and_the_next_runs(staff_client, wedding):
    BackupJob.objects.create(wedding=wedding, kind="backup", status="failed", error_summary="provider down")
    Schedule.objects.create(task="scrub", plan="", interval_minutes=60, next_run_at=ago(-1)) \
        if not Schedule.objects.filter(task="scrub").exists() else None
    html = staff_client.get(f"/weddings/{wedding.slug}/").content.decode()
    assert 'data-event="backup"' in html and "provider down" in html and 'data-next="scrub"' in html
    html = staff_client.get(f"/weddings/{wedding.slug}/timeline/?before=not-a-date").content.decode()
    assert 'data-event="backup"' in html


def test_the_timeline_page_needs_the_view_permission(plain_client, wedding):
    assert plain_client.get(f"/weddings/{wedding.slug}/timeline/").status_code == 403


def test_who_downloaded_what_is_shown_only_to_those_who_may_read_the_audit(django_user_model, wedding, staff_user):
    audit_record(by=staff_user, action="asset.download", target=f"asset:{wedding.slug}/ceremony/vows.jpg")
    BackupJob.objects.create(wedding=wedding, kind="backup", status="succeeded")
    assert [e.kind for e in wedding_timeline(wedding=wedding, audit=False).events] == ["backup"]
    viewer = django_user_model.objects.create_user("vera", "v@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_wedding"))
    client = Client()
    client.force_login(viewer)
    for url in (f"/weddings/{wedding.slug}/", f"/weddings/{wedding.slug}/timeline/"):
        html = client.get(url).content.decode()
        assert 'data-event="backup"' in html and "ceremony/vows.jpg" not in html
        assert "shown to those who may read the audit" in html
    viewer.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client.force_login(viewer)
    assert "Downloaded ceremony/vows.jpg" in client.get(f"/weddings/{wedding.slug}/timeline/").content.decode()
