"""Removing the temporary copies a failover made, only where the policy holds without them (real folders)."""

import hashlib
import io
import json
from pathlib import Path

import pytest

from backups.layout import manifest_key, object_key
from backups.models import Replica
from backups.repair import repair_prune_temporaries
from providers.backends import backend_for
from providers.models import Provider
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db
DATA = b"\xff\xd8\xff" + b"first dance" * 100


@pytest.fixture
def setup(tmp_path, policy):
    providers = [make_provider(name=f"folder-{n}", kind="watched_folder", region="us-east-1",
                               bucket=str(tmp_path / n), options={"create": True}) for n in "abc"]
    wedding = make_wedding()
    asset = make_asset(wedding, data=DATA)
    replicas = []
    for provider, temporary in zip(providers, (False, False, True), strict=True):
        info = backend_for(provider).put(object_key(asset), io.BytesIO(DATA), len(DATA), sha256=asset.sha256)
        replicas.append(Replica.objects.create(
            asset=asset, provider=provider, object_key=info.key, status=Replica.Status.VERIFIED, size=len(DATA),
            sha256=asset.sha256, checksums=info.checksums, temporary=temporary))
    stale = json.dumps({"files": ["stale"]}).encode()
    backend_for(providers[2]).put(manifest_key(wedding), io.BytesIO(stale), len(stale),
                                  sha256=hashlib.sha256(stale).hexdigest())
    return wedding, asset, providers, replicas


def on_disk(provider: Provider, key: str) -> bool:
    return (Path(provider.bucket) / key).exists()


def test_a_temporary_copy_the_policy_no_longer_needs_is_removed(setup):
    wedding, asset, providers, (a, b, temp) = setup
    assert repair_prune_temporaries(wedding=wedding) == 1
    temp.refresh_from_db()
    assert temp.status == Replica.Status.DELETED
    assert not on_disk(providers[2], temp.object_key)
    assert not on_disk(providers[2], manifest_key(wedding))  # no stale manifest left behind
    for r, p in ((a, providers[0]), (b, providers[1])):
        r.refresh_from_db()
        assert r.status == Replica.Status.VERIFIED and on_disk(p, r.object_key)
        assert json.loads((Path(p.bucket) / manifest_key(wedding)).read_text())["files"][0]["sha256"] == asset.sha256
    assert repair_prune_temporaries(wedding=wedding) == 0  # idempotent


def test_nothing_is_removed_while_a_preferred_copy_is_not_verified(setup, policy):
    wedding, _, providers, (_, b, temp) = setup
    policy.min_copies = 1  # so the policy alone would allow it: the order copy-verify-delete forbids it
    policy.save()
    Replica.objects.filter(pk=b.pk).update(status=Replica.Status.FAILED, last_error="provider down: redirected")
    assert repair_prune_temporaries(wedding=wedding) == 0
    assert on_disk(providers[2], temp.object_key)


def test_nothing_is_removed_while_a_preferred_provider_is_down(setup, policy):
    wedding, _, providers, (_, _, temp) = setup
    policy.min_copies = 1
    policy.save()
    Provider.objects.filter(pk=providers[1].pk).update(status=Provider.Status.DOWN)
    assert repair_prune_temporaries(wedding=wedding) == 0
    assert on_disk(providers[2], temp.object_key)


def test_a_temporary_copy_the_policy_still_needs_is_kept(setup, policy):
    wedding, _, providers, (_, _, temp) = setup
    policy.min_copies = 3
    policy.save()
    assert repair_prune_temporaries(wedding=wedding) == 0
    temp.refresh_from_db()
    assert temp.status == Replica.Status.VERIFIED and on_disk(providers[2], temp.object_key)


def test_a_copy_that_cannot_be_deleted_stays_verified(setup):
    wedding, _, providers, (_, _, temp) = setup
    root = Path(providers[2].bucket)
    root.rename(root.with_name("unmounted"))  # the folder went away between the plan and the delete
    Provider.objects.filter(pk=providers[2].pk).update(options={})  # and is no longer re-created
    assert repair_prune_temporaries(wedding=wedding) == 0
    temp.refresh_from_db()
    assert temp.status == Replica.Status.VERIFIED
    assert "temporary copy not removed" in temp.last_error
