"""Helpers for the console's view tests: rows with replicas, chart JSON out of a page, query counting."""

from __future__ import annotations

import json
import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from backups.models import Asset, Replica


def make_replica(asset: Asset, provider, **kwargs) -> Replica:
    values = {"object_key": f"weddings/{asset.wedding.slug}/{asset.kind}/{asset.relative_path}",
              "status": Replica.Status.VERIFIED, "sha256": asset.sha256, "size": asset.size,
              "reason": f"placed on {provider.name} by test"}
    values.update(kwargs)
    return Replica.objects.create(asset=asset, provider=provider, **values)


def chart(response, chart_id: str) -> dict:
    """The plotly figure a page embedded (json_script) under this id."""
    html = response.content.decode()
    match = re.search(rf'<script id="{re.escape(chart_id)}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no chart {chart_id!r} in the page"
    return json.loads(match.group(1))


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content[:2000]
    return len(ctx.captured_queries)


def assert_login_redirect(response, url: str) -> None:
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert url.split("?")[0] in response["Location"]
