"""Secrets never reach logs, job records, events, notifications or pages, even when they are the problem."""

import datetime as dt
import logging

import pytest
from django.core import mail

from backups.failover import provider_mark_down
from backups.ingest import wedding_import
from backups.models import AuditEvent, BackupJob, Replica
from backups.tasks import backup_start
from providers.models import FailoverEvent, ProviderHealthCheck
from tests.weddings import wedding_folder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.servers]
CANARY = "Canary-Secret-7f3a9c-should-never-be-seen"


def test_a_refused_secret_appears_nowhere(tmp_path, cloud_providers, run_workers, settings, caplog, staff_client):
    settings.WEDBACKUP_NOTIFY_EMAILS = ["ops@example.com"]
    settings.WEDBACKUP_BREAKER_FAILURES = 1
    s3 = cloud_providers["s3"]
    s3.credentials = {**s3.credentials, "secret_access_key": CANARY}
    s3.save()
    caplog.set_level(logging.DEBUG)
    source = wedding_folder(tmp_path / "source", photos=2, video_bytes=10_000)
    wedding = wedding_import(path=source, couple="Ana & Ben", date=dt.date(2026, 2, 1), country="US").wedding
    backup_start(wedding=wedding)
    run_workers()
    provider_mark_down(provider=cloud_providers["gcs"], by=None, reason="drill")

    failed = Replica.objects.filter(provider=s3, status="failed")
    assert failed.exists() and all(r.last_error for r in failed)  # the refusal was seen and recorded
    records = [
        *Replica.objects.values_list("last_error", "reason"),
        *BackupJob.objects.values_list("error_summary", "result", "params"),
        *ProviderHealthCheck.objects.values_list("error"),
        *FailoverEvent.objects.values_list("reason", "redirected"),
        *AuditEvent.objects.values_list("target", "details"),
        *[(m.subject, m.body) for m in mail.outbox],
    ]
    assert CANARY not in str(records)
    assert CANARY not in caplog.text
    for url in ["/", f"/weddings/{wedding.slug}/", f"/providers/{s3.pk}/", "/jobs/",
                f"/admin/providers/provider/{s3.pk}/change/", "/admin/backups/replica/", "/admin/backups/backupjob/"]:
        assert CANARY not in staff_client.get(url).content.decode(), url
