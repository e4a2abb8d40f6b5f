import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from backups.models import BackupJob
from costs.models import CostSnapshot, Optimization
from costs.snapshots import cost_snapshot_take
from tests.factories import make_wedding
from tests.views import assert_login_redirect, chart, queries_for

pytestmark = pytest.mark.django_db
URL = "/costs/"


def proposal(kind="lifecycle", current="10", new="4", **kwargs) -> Optimization:
    values = {"wedding": make_wedding(), "summary": f"{kind}: move RAW files to a colder class",
              "current_monthly": Decimal(current), "new_monthly": Decimal(new)}
    values.update(kwargs)
    return Optimization.objects.create(kind=kind, **values)


def test_it_redirects_anonymous_users(client):
    assert_login_redirect(client.get(URL), URL)


def test_it_forbids_non_staff(plain_client):
    assert plain_client.get(URL).status_code == 403


def test_before_the_first_snapshot_it_says_so(staff_client):
    html = staff_client.get(URL).content.decode()
    assert 'data-stat="cost-missing">not computed yet' in html
    assert "never (not computed yet)" in html


def test_it_shows_the_cost_model_summary(staff_client):
    cost_snapshot_take()  # the real cost model over an empty fleet, as the periodic job runs it
    html = staff_client.get(URL).content.decode()
    assert 'data-stat="cost-now">0.00<' in html
    assert "never (not computed yet)" not in html


def snapshot(current="90", optimised="60", days_ago=0, rows=None) -> CostSnapshot:
    rows = rows or [{"provider": "s3", "storage_class": "STANDARD", "monthly": "50"},
                    {"provider": "s3", "storage_class": "GLACIER_IR", "monthly": "10"},
                    {"provider": "b2", "storage_class": "", "monthly": "30"}]
    return CostSnapshot.objects.create(current_monthly=Decimal(current), optimised_monthly=Decimal(optimised),
                                       by_provider_class=rows, savings_by_kind={"lifecycle": "30"},
                                       taken_at=timezone.now() - dt.timedelta(days=days_ago))


def test_it_charts_now_optimised_and_cost_by_provider_class(staff_client):
    snapshot()
    response = staff_client.get(URL)
    assert chart(response, "chart-costs")["data"][0]["y"] == [90.0, 60.0]
    traces = {t["name"]: dict(zip(t["x"], t["y"], strict=True)) for t in chart(response, "chart-by-class")["data"]}
    assert traces["STANDARD"] == {"b2": 0.0, "s3": 50.0}
    assert traces["default class"] == {"b2": 30.0, "s3": 0.0}
    assert 'data-stat="history-missing"' in response.content.decode()  # one snapshot is not a history


def test_it_charts_cost_by_provider_and_class_over_time(staff_client):
    snapshot("100", "70", days_ago=2, rows=[{"provider": "s3", "storage_class": "STANDARD", "monthly": "100"}])
    snapshot("90", "60", days_ago=1)
    response = staff_client.get(URL)
    traces = {t["name"]: t["y"] for t in chart(response, "chart-history")["data"]}
    assert traces["s3 · STANDARD"] == [100.0, 50.0]
    assert traces["b2 · default class"] == [0.0, 30.0]
    assert traces["optimised total"] == [70.0, 60.0]
    assert 'data-stat="history-missing"' not in response.content.decode()


def test_it_lists_proposals_and_sums_savings_by_kind(staff_client):
    proposal("lifecycle", "10", "4")
    proposal("lifecycle", "20", "15")
    proposal("provider_mix", "8", "2")
    proposal("dedup", "5", "1", status=Optimization.Status.APPLIED)  # applied: not an open proposal
    response = staff_client.get(URL)
    savings = chart(response, "chart-savings")["data"][0]
    assert dict(zip(savings["x"], savings["y"], strict=True)) == {"lifecycle": 11.0, "provider_mix": 6.0}
    html = response.content.decode()
    assert html.count('action="/costs/optimizations/') == 3 + 1  # three apply buttons and apply all
    assert "Apply all (3)" in html


def test_it_shows_past_applies_with_their_result(staff_client, staff_user):
    job = BackupJob.objects.create(kind="optimise", status="partial", files_planned=4, files_done=2)
    proposal("provider_mix", status=Optimization.Status.PARTIAL, applied_at=timezone.now(), applied_by=staff_user,
              job=job, error="b2: quota exceeded", realised_monthly_saving=Decimal("2.5"))
    html = staff_client.get(URL).content.decode()
    assert "b2: quota exceeded" in html and "2.50" in html
    assert f"/jobs/{job.pk}.json" in html


def test_apply_queues_a_job(staff_client, staff_user, rq_queues, django_capture_on_commit_callbacks):
    opt = proposal()
    assert staff_client.get(f"/costs/optimizations/{opt.pk}/apply/").status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/costs/optimizations/{opt.pk}/apply/", follow=True)
    opt.refresh_from_db()
    assert opt.status == Optimization.Status.APPLYING
    assert (opt.job.kind, opt.job.requested_by) == ("optimise", staff_user)
    assert f"in job #{opt.job.pk}" in response.content.decode()
    assert next(q for q in rq_queues if q.name == "bulk").count == 1


def test_an_advisory_proposal_says_why_it_was_not_applied(staff_client):
    opt = proposal("compression")
    page = staff_client.get(URL).content.decode()
    assert f'action="/costs/optimizations/{opt.pk}/apply/"' not in page  # no button that can only fail
    assert "data-advisory" in page and "Apply all (0)" in page
    response = staff_client.post(f"/costs/optimizations/{opt.pk}/apply/", follow=True)
    assert "was not applied" in response.content.decode()
    assert not BackupJob.objects.exists()


def test_apply_all_queues_every_appliable_proposal(staff_client, rq_queues, django_capture_on_commit_callbacks):
    proposal("lifecycle")
    proposal("provider_mix")
    proposal("dedup")
    assert staff_client.get("/costs/optimizations/apply-all/").status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post("/costs/optimizations/apply-all/", follow=True)
    assert "2 apply jobs queued" in response.content.decode()
    assert BackupJob.objects.filter(kind="optimise").count() == 2


def test_apply_needs_staff_and_csrf(plain_client, staff_user):
    opt = proposal()
    assert plain_client.post(f"/costs/optimizations/{opt.pk}/apply/").status_code == 403
    assert plain_client.post("/costs/optimizations/apply-all/").status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    assert strict.post(f"/costs/optimizations/{opt.pk}/apply/").status_code == 403
    assert strict.post("/costs/optimizations/apply-all/").status_code == 403
    opt.refresh_from_db()
    assert opt.status == Optimization.Status.PROPOSED


def test_the_query_count_does_not_grow_with_proposals(staff_client, staff_user):
    def add(n):
        for _ in range(n):
            proposal()
            proposal(status=Optimization.Status.APPLIED, applied_by=staff_user,
                     job=BackupJob.objects.create(kind="optimise", status="succeeded"))

    add(5)
    snapshot(days_ago=1)
    few = queries_for(staff_client, URL)
    add(45)
    for days in range(2, 60):
        snapshot(days_ago=days)
    assert queries_for(staff_client, URL) == few
