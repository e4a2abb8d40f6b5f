import json

import pytest
from django.core.management import call_command

from backups.models import WeddingHealth
from costs.models import CostSnapshot
from tests.factories import make_asset, make_wedding

pytestmark = pytest.mark.django_db


def test_it_refreshes_every_wedding_and_the_costs(capsys):
    for _ in range(3):
        make_asset(make_wedding(), size=5)
    call_command("refresh_snapshots", "--json")
    result = json.loads(capsys.readouterr().out)
    assert result["weddings"] == 3 and "cost_snapshot" in result
    assert WeddingHealth.objects.filter(at_risk=True).count() == 3
    assert CostSnapshot.objects.count() == 1


def test_no_costs_skips_the_cost_model(capsys):
    make_wedding()
    call_command("refresh_snapshots", "--no-costs")
    out = capsys.readouterr().out
    assert "1 weddings refreshed" in out and "cost snapshot" not in out
    assert not CostSnapshot.objects.exists()
