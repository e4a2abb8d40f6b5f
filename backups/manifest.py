"""weddings/<slug>/MANIFEST.json on every provider: enough to restore and check without WedBackup, and enough to
rebuild the wedding's catalogue rows (``rebuild``) when WedBackup's own database is gone. Beside it, one small
fleet-index object per wedding (``layout.INDEX_PREFIX``), so a rebuild lists weddings without listing every object.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict

from django.utils import timezone

from providers.backends import backend_for
from providers.backends.base import ProviderError
from providers.models import Provider

from . import encryption
from .layout import index_key, manifest_key
from .models import Replica, Wedding

FORMAT = "wedbackup-manifest/2"
INDEX_FORMAT = "wedbackup-index/1"
# Raised when what a manifest must carry to rebuild the catalogue changes.
CATALOGUE_VERSION = 2
WEDDING_FIELDS = ("slug", "couple", "date", "country", "city", "residency_zone", "plan", "requires_ml_analysis",
                  "sharing_allowed", "legal_hold")


class ManifestError(ValueError):
    """A manifest that cannot be trusted: truncated, not JSON, a failed checksum or an unknown format."""


def _canonical(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_seal(manifest: dict) -> bytes:
    """The manifest as stored: readable JSON carrying the sha256 of its own canonical form (without it)."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    sealed = {**body, "checksum": "sha256:" + hashlib.sha256(_canonical(body)).hexdigest()}
    return json.dumps(sealed, indent=2, ensure_ascii=False).encode()


def manifest_parse(raw: bytes) -> dict:
    """A stored manifest, checked; ManifestError says why it cannot be used."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"not valid JSON (truncated?): {exc.msg if hasattr(exc, 'msg') else exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ManifestError(f"format {found!r} is not {FORMAT!r} (back the wedding up again to rewrite it)")
    body = {k: v for k, v in data.items() if k != "checksum"}
    if data.get("checksum") != "sha256:" + hashlib.sha256(_canonical(body)).hexdigest():
        raise ManifestError("checksum does not match the content")
    if not isinstance(data.get("wedding"), dict) or not isinstance(data.get("files"), list):
        raise ManifestError("wedding or files missing")
    return data


def _holders(wedding: Wedding) -> dict[int, list[str]]:
    """asset id -> the providers holding a verified copy (so a rebuild knows of copies it cannot read)."""
    holders = defaultdict(list)
    rows = (Replica.objects.filter(asset__wedding=wedding, status=Replica.Status.VERIFIED)
            .values_list("asset_id", "provider__name").order_by("provider__name"))
    for asset_id, name in rows:
        holders[asset_id].append(name)
    return holders


def manifest_for(wedding: Wedding, provider: Provider, holders: dict[int, list[str]] | None = None) -> dict:
    replicas = (
        Replica.objects.filter(asset__wedding=wedding, provider=provider, status=Replica.Status.VERIFIED)
        .select_related("asset").order_by("object_key")
    )
    holders = _holders(wedding) if holders is None else holders
    values = {name: getattr(wedding, name) for name in WEDDING_FIELDS}
    manifest = {
        "format": FORMAT,
        "catalogue_version": CATALOGUE_VERSION,
        "wedding": {**values, "date": wedding.date.isoformat(), "residency": wedding.residency_zone,
                    "assets": wedding.assets.count()},
        "provider": provider.name,
        "generated_at": timezone.now().isoformat(),
        "files": [
            {"path": r.asset.relative_path, "key": r.object_key, "kind": r.asset.kind, "size": r.asset.size,
             "sha256": r.sha256, "content_type": r.asset.content_type, "width": r.asset.width,
             "height": r.asset.height, "storage_class": r.storage_class, "encrypted": r.encrypted,
             "captured_at": r.asset.captured_at.isoformat() if r.asset.captured_at else None,
             # The stored object as the provider reported it when verified: what a rebuild's HEAD must match.
             "stored_size": r.size, "checksums": r.checksums, "version_id": r.version_id,
             "retain_until": r.retain_until.isoformat() if r.retain_until else None,
             "copies": holders.get(r.asset_id, [])}
            for r in replicas
        ],
    }
    if any(f["encrypted"] for f in manifest["files"]):
        # Enough to decrypt with the master key alone: the data key travels wrapped, never in the clear.
        manifest["encryption"] = {
            "algorithm": encryption.ALGORITHM, "object_format": "MAGIC 'WBE1' | 12-byte nonce | ciphertext | tag",
            "master_key_id": encryption.master_key_id(), "wrapped_data_key": wedding.wrapped_data_key,
            "note": "size and sha256 are of the plaintext; stored_size of the encrypted object",
        }
    return manifest


def _put_json(backend, key: str, body: bytes) -> None:
    backend.put(key, io.BytesIO(body), len(body), sha256=hashlib.sha256(body).hexdigest(),
                content_type="application/json")


def manifests_write(*, wedding: Wedding) -> list[str]:
    """Write the manifest, then the wedding's fleet-index entry, to every provider holding part of the wedding
    (each object is replaced whole: a reader sees the old one or the new one); returns the errors, if any."""
    errors = []
    # A provider that is down gets its manifest from the repair job that runs when it is back.
    providers = (
        Provider.objects.filter(replicas__asset__wedding=wedding, replicas__status="verified", enabled=True)
        .exclude(status=Provider.Status.DOWN).distinct()
    )
    holders = _holders(wedding)
    for provider in providers:
        manifest = manifest_for(wedding, provider, holders)
        body = manifest_seal(manifest)
        entry = {"format": INDEX_FORMAT, "catalogue_version": CATALOGUE_VERSION, "slug": wedding.slug,
                 "manifest": manifest_key(wedding), "generated_at": manifest["generated_at"],
                 "manifest_sha256": hashlib.sha256(body).hexdigest()}
        try:
            backend = backend_for(provider)
            # The index entry first: a manifest without one would be invisible to a rebuild that reads the index;
            # an entry whose manifest failed to land is found missing (and reported) by the rebuild instead.
            _put_json(backend, index_key(wedding.slug), json.dumps(entry, indent=2).encode())
            _put_json(backend, manifest_key(wedding), body)
        except ProviderError as exc:
            errors.append(f"manifest on {provider.name}: {exc}")
    return errors
