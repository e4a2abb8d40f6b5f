"""Apply a cost proposal from the console, in a real browser, and see it applied."""

import django_rq
import pytest
from django.contrib.auth import get_user_model

from backups.tasks import backup_start
from costs.models import CostSnapshot, Optimization
from costs.proposals import optimizations_refresh
from costs.snapshots import cost_snapshot_take
from costs.templatetags.money import money
from providers.models import Provider
from tests.fixtures.clouds import small_old_wedding

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.servers]
PASSWORD = "browser-test-Password-2"


def test_applying_a_proposal_from_the_costs_page(page, shoot, tmp_path, cost_servers, run_workers):
    get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)
    wedding = small_old_wedding(tmp_path)
    backup_start(wedding=wedding)
    run_workers()
    Provider.objects.filter(pk=cost_servers["wasabi"].pk).update(enabled=True)
    proposal = next(o for o in optimizations_refresh(wedding=wedding) if o.kind == "lifecycle")
    before = CostSnapshot.objects.get(pk=cost_snapshot_take().pk)  # what the periodic job stores for the console

    page.goto("/costs/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(f"form[action='/costs/optimizations/{proposal.pk}/apply/'] button")
    assert page.inner_text("[data-stat=cost-now]") == money(before.current_monthly)
    shoot("costs")
    page.click(f"form[action='/costs/optimizations/{proposal.pk}/apply/'] button")
    page.wait_for_load_state()
    run_workers()  # the apply job runs on a real worker
    scheduled = django_rq.get_queue("bulk").scheduled_job_registry.get_job_ids()
    assert any(j.startswith("wedbackup-soon-cost-snapshot") for j in scheduled)
    after = CostSnapshot.objects.get(pk=cost_snapshot_take().pk)  # what that scheduled job does
    assert after.current_monthly < before.current_monthly
    page.goto("/costs/")
    assert page.inner_text("[data-stat=cost-now]") == money(after.current_monthly)
    proposal.refresh_from_db()
    assert proposal.status == Optimization.Status.APPLIED, proposal.error
    row = page.locator("tr", has_text=proposal.summary[:40]).first
    assert "applied" in row.inner_text()
    shoot("costs-applied")
