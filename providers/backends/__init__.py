"""One registry maps a provider kind to its backend class, imported lazily."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import threading
from typing import TYPE_CHECKING, Any

from django.conf import settings

from ..endpoints import endpoint_problem
from .base import Backend, BackendConfig, PermanentError

if TYPE_CHECKING:
    from providers.models import Provider

BACKENDS: dict[str, str] = {
    "aws_s3": "providers.backends.s3.S3Backend",
    "wasabi": "providers.backends.s3.WasabiBackend",
    "gcs": "providers.backends.gcs.GCSBackend",
    "azure_blob": "providers.backends.azure.AzureBlobBackend",
    "b2": "providers.backends.b2.B2Backend",
    "dropbox": "providers.backends.dropbox.DropboxBackend",
    "box": "providers.backends.box.BoxBackend",
    "watched_folder": "providers.backends.watched_folder.WatchedFolderBackend",
}


def backend_class(kind: str) -> type[Backend]:
    try:
        module_name, _, cls_name = BACKENDS[kind].rpartition(".")
    except KeyError:
        raise PermanentError(f"unknown provider kind {kind!r}") from None
    return getattr(importlib.import_module(module_name), cls_name)


def backends_preload() -> None:
    """Import every backend module (and with them the SDKs) and load boto3's S3 model: a forking worker does
    this once, before its first work horse, so no job pays for it (``WEDBACKUP_WORKER_PRELOAD``)."""
    for kind in BACKENDS:
        backend_class(kind)
    importlib.import_module("providers.backends.s3_client").warm_session()


def backend_from_config(config: BackendConfig) -> Backend:
    return backend_class(config.kind)(config)


def config_for(provider: Provider, **overrides: Any) -> BackendConfig:
    values = dict(
        name=provider.name,
        kind=provider.kind,
        bucket=provider.bucket,
        region=provider.region,
        endpoint=provider.endpoint,
        credentials=provider.credentials or {},
        default_storage_class=provider.default_storage_class,
        options=provider.options or {},
        part_size=settings.WEDBACKUP_PART_SIZE,
    )
    values.update(overrides)
    return BackendConfig(**values)


def _endpoint_check(config: BackendConfig) -> None:
    """The endpoint is checked when a backend is built, not only when the row was saved: a row changed behind
    the form's back, or a name that resolves elsewhere today, never gets the stored keys."""
    problem = endpoint_problem(config.endpoint)
    if problem:
        raise PermanentError(f"{config.name}: endpoint refused: {problem}")


def backend_for(provider: Provider) -> Backend:
    """The single factory: a Provider row in, a ready backend out."""
    config = config_for(provider)
    _endpoint_check(config)
    return backend_from_config(config)


_cache: dict[tuple[int, str], Backend] = {}
_cache_lock = threading.Lock()


def _fingerprint(config: BackendConfig) -> str:
    """A digest of everything a backend is built from, so any change to the row (even one made with
    ``QuerySet.update()``, which leaves ``updated`` alone) builds a new backend; no secret kept in clear."""
    data = json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def backend_cached(provider: Provider) -> Backend:
    """One backend per provider per process (its SDK clients live inside), rebuilt whenever what it is
    built from changes. Building a backend creates SDK clients, which costs more than a small upload."""
    config = config_for(provider)
    key = (provider.pk, _fingerprint(config))
    with _cache_lock:
        backend = _cache.get(key)
        if backend is None:
            for stale in [k for k in _cache if k[0] == provider.pk]:
                del _cache[stale]
            _endpoint_check(config)
            backend = _cache[key] = backend_from_config(config)
    return backend
