"""Small helpers that make rows for tests (plain functions; no factory library needed for this few)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

from backups.models import Asset, Wedding
from providers.models import Provider

_seq = itertools.count(1)


def make_wedding(**kwargs) -> Wedding:
    n = next(_seq)
    values = {"couple": f"Ana & Ben {n}", "date": dt.date(2026, 6, 20), "country": "US"}
    values.update(kwargs)
    return Wedding.objects.create(**values)


def make_asset(wedding: Wedding, **kwargs) -> Asset:
    n = next(_seq)
    data = kwargs.pop("data", f"asset {n}".encode())
    values = {
        "relative_path": f"ceremony/IMG_{n:04d}.jpg", "kind": "photo", "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(), "content_type": "image/jpeg",
    }
    values.update(kwargs)
    return Asset.objects.create(wedding=wedding, **values)


def make_provider(**kwargs) -> Provider:
    n = next(_seq)
    values = {"name": f"provider-{n}", "kind": "aws_s3", "region": "us-east-1", "bucket": f"bucket-{n}"}
    values.update(kwargs)
    return Provider.objects.create(**values)
