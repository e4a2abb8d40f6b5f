"""The audit page: who did what, when, to what, filtered; for those who may see the audit only."""

import pytest
from django.contrib.auth.models import Permission

from backups.audit import audit_record

pytestmark = pytest.mark.django_db


def test_it_lists_events_newest_first_and_filters_them(staff_client, staff_user):
    audit_record(by=staff_user, action="wedding.download", target="wedding:ana-ben", details={"files": 12})
    audit_record(by="cli:root", action="wedding.erase", target="wedding:old-one", details={"count": 3})
    audit_record(by=None, action="replica.delete", target="replica:7", details={"reason": "moved"})
    page = staff_client.get("/audit/").content.decode()
    page = page[page.index("<tbody>"):]
    assert page.index("replica.delete") < page.index("wedding.erase") < page.index("wedding.download")
    filtered = staff_client.get("/audit/", {"action": "wedding.", "actor": "cli"}).content.decode()
    filtered = filtered[filtered.index("<tbody>"):]
    assert "wedding.erase" in filtered and "wedding.download" not in filtered and "replica.delete" not in filtered
    assert "Nothing recorded with these filters" in staff_client.get("/audit/", {"target": "nobody"}).content.decode()


def test_the_navigation_offers_it_only_to_those_who_may_see_it(staff_client, plain_user, django_user_model, client):
    assert 'href="/audit/"' in staff_client.get("/").content.decode()
    viewer = django_user_model.objects.create_user("v", "v@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_wedding"))
    client.force_login(viewer)
    assert 'href="/audit/"' not in client.get("/").content.decode()
    assert client.get("/audit/").status_code == 403
