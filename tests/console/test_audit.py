"""Actions that touch client data leave an AuditEvent: who, when, what."""

import datetime as dt

import pytest

from backups.models import AuditEvent, BackupJob
from backups.restore import zip_run
from backups.tasks import import_start, restore_start
from costs.models import Optimization
from costs.tasks import optimization_apply
from tests.factories import make_wedding

pytestmark = pytest.mark.django_db


def test_a_zip_download_is_audited_with_who_downloaded_it(staff_client, staff_user, tmp_path, settings, rq_queues):
    settings.WEDBACKUP_ZIP_DIR = str(tmp_path)
    wedding = make_wedding()
    job = BackupJob.objects.create(wedding=wedding, kind=BackupJob.Kind.RESTORE, params={"zip": True})
    zip_run(job=job)  # an empty wedding: an empty zip
    response = staff_client.get(f"/jobs/{job.pk}/download/")
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="wedding.download")
    assert event.actor == staff_user and event.target == f"wedding:{wedding.slug}"
    b"".join(response.streaming_content)


def test_imports_restores_and_applies_are_audited(staff_user, tmp_path, rq_queues):
    wedding = make_wedding()
    import_start(path=str(tmp_path), couple="Ana & Ben", date=dt.date(2026, 6, 20), country="FR",
                 requested_by=staff_user)
    restore_start(wedding=wedding, to=str(tmp_path / "out"), requested_by=staff_user)
    opt = Optimization.objects.create(wedding=wedding, kind=Optimization.Kind.LIFECYCLE, summary="cooler class",
                                      changes=[], current_monthly=2, new_monthly=1)
    optimization_apply(optimization=opt, by=staff_user)
    actions = dict(AuditEvent.objects.values_list("action", "actor_label"))
    assert actions == {"wedding.import": "staff", "wedding.restore": "staff", "optimization.apply": "staff"}
    assert AuditEvent.objects.get(action="wedding.import").details["path"] == str(tmp_path)


def test_provider_and_policy_changes_are_audited_without_the_secrets(staff_client, tmp_path):
    from backups.models import BackupPolicy
    from providers.models import Provider

    folder = tmp_path / "nas"
    folder.mkdir()
    response = staff_client.post("/admin/providers/provider/add/", {
        "name": "nas", "kind": "watched_folder", "region": "us-east-1", "endpoint": "", "bucket": str(folder),
        "default_storage_class": "", "options": "{}", "enabled": "on", "status": "active", "notes": "",
        "new_credentials": '{"token": "s3cr3t-value"}'})
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="provider.create", target="provider:nas")
    assert "credentials" in event.details["fields"] and "s3cr3t-value" not in str(event.details)
    policy = BackupPolicy.default()
    staff_client.post(f"/admin/backups/backuppolicy/{policy.pk}/change/", {
        "name": policy.name, "is_default": "on", "min_copies": 4, "min_distinct_providers": 2,
        "enforce_residency": "on", "cross_region_copy": "premium", "critical_extra_copies": 1,
        "max_restore_hours": 12, "retention_days": 365, "scrub_days": 30, "plan_overrides": "{}"})
    event = AuditEvent.objects.get(action="policy.change")
    assert event.details["min_copies"] == "4" and event.details["retention_days"] == "365"
    assert Provider.objects.get(name="nas").credentials == {"token": "s3cr3t-value"}
