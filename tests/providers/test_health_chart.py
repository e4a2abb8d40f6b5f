"""The provider page's health chart reads well with no, one or many checks; buttons that cannot apply are disabled."""

import datetime as dt

import pytest
from django.utils import timezone

from providers.models import Provider, ProviderHealthCheck
from tests.factories import make_provider
from tests.views import chart

pytestmark = pytest.mark.django_db


def check(provider, *, ago: dt.timedelta, ok: bool = True, latency: float = 120.0) -> None:
    ProviderHealthCheck.objects.create(provider=provider, checked_at=timezone.now() - ago, ok=ok, latency_ms=latency,
                                       error="" if ok else "timed out")


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace(" ", "T"))


def test_a_single_check_spans_the_selected_range_and_stays_inside_the_axes(staff_client):
    provider = make_provider()
    check(provider, ago=dt.timedelta(minutes=5), latency=480.0)
    response = staff_client.get(f"/providers/{provider.pk}/")
    layout = chart(response, "chart-health")["layout"]
    start, end = (parse(v) for v in layout["xaxis"]["range"])
    assert layout["xaxis"]["type"] == "date"
    assert dt.timedelta(hours=23, minutes=59) < end - start <= dt.timedelta(hours=24, seconds=1)
    assert layout["yaxis"]["range"][0] == 0 and layout["yaxis"]["range"][1] > 480
    assert "Not enough data yet" in response.content.decode()
    assert layout["annotations"][0]["text"] == "Not enough data yet"


def test_the_failures_axis_counts_in_whole_numbers(staff_client):
    provider = make_provider()
    check(provider, ago=dt.timedelta(hours=3), ok=False)
    check(provider, ago=dt.timedelta(hours=1))
    response = staff_client.get(f"/providers/{provider.pk}/")
    figure = chart(response, "chart-health")
    failures = figure["layout"]["yaxis2"]
    assert failures["tickformat"] == ",d" and failures["dtick"] == 1 and failures["tick0"] == 0
    assert failures["rangemode"] == "tozero" and failures["range"][0] == 0 and failures["range"][1] >= 1
    assert all(float(step).is_integer() for step in [failures["dtick"], *failures["range"]])
    assert "annotations" not in figure["layout"]
    assert 'data-state="not-enough-data"' not in response.content.decode()


def test_many_failures_tick_in_whole_steps_above_the_worst_bucket(staff_client):
    provider = make_provider()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)
    for minute in range(23):  # all in one hourly bucket
        check(provider, ago=timezone.now() - hour - dt.timedelta(minutes=minute), ok=False)
    check(provider, ago=dt.timedelta(minutes=10))
    failures = chart(staff_client.get(f"/providers/{provider.pk}/"), "chart-health")["layout"]["yaxis2"]
    assert failures["dtick"] == 5 and failures["range"] == [0, 30]


def test_the_range_follows_the_selection(staff_client):
    provider = make_provider()
    layout = chart(staff_client.get(f"/providers/{provider.pk}/?range=7d"), "chart-health")["layout"]
    start, end = (parse(v) for v in layout["xaxis"]["range"])
    assert abs((end - start) - dt.timedelta(days=7)) < dt.timedelta(seconds=1)
    assert layout["yaxis2"]["range"] == [0, 2]  # an empty chart still counts in whole numbers
    assert layout["yaxis"]["range"][1] > 0


def buttons(html: str) -> dict[str, str]:
    """data-action -> "enabled" or "disabled"."""
    import re

    found = {}
    for tag in re.findall(r"<(?:a|button)[^>]*data-action=\"[^\"]+\"[^>]*>", html):
        action = re.search(r'data-action="([^"]+)"', tag).group(1)
        found[action] = "disabled" if " disabled" in tag else "enabled"
    return found


@pytest.mark.parametrize(("status", "expected"), [
    (Provider.Status.ACTIVE, {"mark-down": "enabled", "mark-up": "disabled", "probe": "enabled"}),
    (Provider.Status.DEGRADED, {"mark-down": "enabled", "mark-up": "disabled", "probe": "enabled"}),
    (Provider.Status.DOWN, {"mark-down": "disabled", "mark-up": "enabled", "probe": "enabled"}),
    (Provider.Status.DRAINING, {"mark-down": "disabled", "mark-up": "enabled", "probe": "enabled"}),
])
def test_only_the_actions_that_apply_are_enabled_and_the_others_say_why(staff_client, status, expected):
    provider = make_provider()
    Provider.objects.filter(pk=provider.pk).update(status=status)
    html = staff_client.get(f"/providers/{provider.pk}/").content.decode()
    assert buttons(html) == expected
    disabled = next(a for a, state in expected.items() if state == "disabled")
    assert f'data-refusal="{disabled}">' in html and ": already" in html
    assert f'href="/providers/{provider.pk}/{disabled}/"' not in html


def test_an_action_that_cannot_apply_is_refused_even_when_posted(staff_client):
    provider = make_provider()
    response = staff_client.post(f"/providers/{provider.pk}/mark-up/", follow=True)
    assert "Already taking work" in response.content.decode()
    provider.refresh_from_db()
    assert provider.status == Provider.Status.ACTIVE
