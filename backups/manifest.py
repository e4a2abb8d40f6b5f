"""weddings/<slug>/MANIFEST.json on every provider: enough to restore and check without WedBackup."""

from __future__ import annotations

import hashlib
import io
import json

from django.utils import timezone

from providers.backends import backend_for
from providers.backends.base import ProviderError
from providers.models import Provider

from . import encryption
from .layout import manifest_key
from .models import Replica, Wedding

FORMAT = "wedbackup-manifest/1"


def manifest_for(wedding: Wedding, provider: Provider) -> dict:
    replicas = (
        Replica.objects.filter(asset__wedding=wedding, provider=provider, status=Replica.Status.VERIFIED)
        .select_related("asset").order_by("object_key")
    )
    manifest = {
        "format": FORMAT,
        "wedding": {"slug": wedding.slug, "couple": wedding.couple, "date": wedding.date.isoformat(),
                    "country": wedding.country, "residency": wedding.residency_zone},
        "provider": provider.name,
        "generated_at": timezone.now().isoformat(),
        "files": [
            {"path": r.asset.relative_path, "key": r.object_key, "kind": r.asset.kind, "size": r.size,
             "sha256": r.sha256, "storage_class": r.storage_class, "encrypted": r.encrypted,
             "captured_at": r.asset.captured_at.isoformat() if r.asset.captured_at else None}
            for r in replicas
        ],
    }
    if any(f["encrypted"] for f in manifest["files"]):
        # Enough to decrypt with the master key alone: the data key travels wrapped, never in the clear.
        manifest["encryption"] = {
            "algorithm": encryption.ALGORITHM, "object_format": "MAGIC 'WBE1' | 12-byte nonce | ciphertext | tag",
            "master_key_id": encryption.master_key_id(), "wrapped_data_key": wedding.wrapped_data_key,
            "note": "sizes and sha256 are of the plaintext",
        }
    return manifest


def manifests_write(*, wedding: Wedding) -> list[str]:
    """Write the manifest to every provider holding part of the wedding; returns the errors, if any."""
    errors = []
    # A provider that is down gets its manifest from the repair job that runs when it is back.
    providers = (
        Provider.objects.filter(replicas__asset__wedding=wedding, replicas__status="verified", enabled=True)
        .exclude(status=Provider.Status.DOWN).distinct()
    )
    for provider in providers:
        body = json.dumps(manifest_for(wedding, provider), indent=2, ensure_ascii=False).encode()
        try:
            backend_for(provider).put(
                manifest_key(wedding), io.BytesIO(body), len(body), sha256=hashlib.sha256(body).hexdigest(),
                content_type="application/json",
            )
        except ProviderError as exc:
            errors.append(f"manifest on {provider.name}: {exc}")
    return errors
