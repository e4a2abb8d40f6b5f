"""Actions that touch client data leave an AuditEvent: who, when, what."""

import datetime as dt

import pytest

from backups.models import AuditEvent
from backups.tasks import import_start, restore_start
from costs.models import Optimization
from costs.tasks import optimization_apply
from tests.factories import make_wedding

pytestmark = pytest.mark.django_db


def test_a_zip_download_is_audited_with_who_downloaded_it(staff_client, staff_user):
    wedding = make_wedding()
    response = staff_client.post(f"/weddings/{wedding.slug}/restore/")
    assert response.status_code in (200, 302)
    event = AuditEvent.objects.get(action="wedding.download")
    assert event.actor == staff_user and event.target == f"wedding:{wedding.slug}"


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
