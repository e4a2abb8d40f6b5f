"""`manage.py failover PROVIDER --down|--up` and `manage.py probe_providers`, on real watched folders."""

import io
import json
import shutil

import pytest
from django.core.management import CommandError, call_command

from backups.models import AuditEvent
from providers.models import FailoverEvent, Provider

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_down_then_up_with_json(folder_provider, breakers):
    provider = folder_provider()
    down = json.loads(run("failover", provider.name, "--down", "--reason", "bucket migration", "--json"))
    assert down["provider"] == provider.name
    assert down["status"] == "draining"
    assert down["failover_event"]["trigger"] == "manual"
    assert down["failover_event"]["reason"] == "bucket migration"
    assert down["failover_event"]["resolved_at"] is None
    provider.refresh_from_db()
    assert provider.status == Provider.Status.DRAINING

    up = json.loads(run("failover", provider.name, "--up", "--json"))
    assert up["status"] == "active"
    assert up["failover_event"]["id"] == down["failover_event"]["id"]
    assert up["failover_event"]["resolved_at"] is not None
    actions = list(AuditEvent.objects.order_by("at").values_list("action", "actor_label", "target"))
    assert [a[0] for a in actions] == ["provider.mark_down", "provider.mark_up"]
    assert all(label.startswith("cli:") and target == f"provider:{provider.name}" for _, label, target in actions)


def test_plain_output(folder_provider, breakers):
    provider = folder_provider()
    out = run("failover", provider.name, "--down")
    assert out.startswith(f"{provider.name}: draining")
    assert "failover event" in out
    assert "resolved" in run("failover", provider.name, "--up")


def test_up_without_an_outage_says_so_in_json(folder_provider, breakers):
    provider = folder_provider()
    assert json.loads(run("failover", provider.name, "--up", "--json"))["failover_event"] is None
    assert FailoverEvent.objects.count() == 0


def test_an_unknown_provider_is_an_error(breakers):
    with pytest.raises(CommandError, match="no provider named 'nope'"):
        run("failover", "nope", "--down")


def test_down_and_up_are_exclusive_and_one_is_required(folder_provider, breakers):
    provider = folder_provider()
    with pytest.raises(CommandError):
        run("failover", provider.name, "--down", "--up")
    with pytest.raises(CommandError):
        run("failover", provider.name)


def test_probe_providers_json(folder_provider, breakers):
    good, gone = folder_provider(), folder_provider()
    folder_provider(enabled=False)
    shutil.rmtree(gone.bucket)
    data = json.loads(run("probe_providers", "--json"))
    rows = {r["provider"]: r for r in data["checks"]}
    assert set(rows) == {good.name, gone.name}
    assert rows[good.name]["ok"] is True and rows[good.name]["status"] == "active"
    assert rows[gone.name]["ok"] is False and "does not exist" in rows[gone.name]["error"]
    assert rows[gone.name]["status"] == "degraded"


def test_probe_providers_plain(folder_provider, breakers):
    provider = folder_provider()
    out = run("probe_providers")
    assert out.startswith(f"{provider.name}: ok in ")
