"""Fixtures for the health and failover tests (none autouse: other provider tests are unaffected)."""

import uuid

import pytest
import redis

from providers.breaker import breaker_store
from tests.factories import make_provider


@pytest.fixture
def breakers(settings):
    """Breakers under a prefix of this test's own (the Redis is shared), with the default thresholds."""
    prefix = f"test:breaker:{uuid.uuid4().hex}"
    settings.WEDBACKUP_BREAKER_PREFIX = prefix
    settings.WEDBACKUP_BREAKER_FAILURES = 3
    settings.WEDBACKUP_BREAKER_COOLDOWN = 30
    settings.WEDBACKUP_PROBE_TIMEOUT = 10
    yield breaker_store()
    conn = redis.Redis.from_url(settings.REDIS_URL)
    for key in conn.scan_iter(f"{prefix}:*"):
        conn.delete(key)


@pytest.fixture
def folder_provider(tmp_path):
    """Make real watched-folder providers, each on a fresh folder of its own."""

    def make(name: str | None = None, **kwargs):
        name = name or f"folder-{uuid.uuid4().hex[:8]}"
        root = tmp_path / name
        root.mkdir()
        values = {"name": name, "kind": "watched_folder", "region": "us-east-1", "bucket": str(root)}
        values.update(kwargs)
        return make_provider(**values)

    return make

