"""Where a provider physically writes (``Backend.location()``): two provider rows on one place are one copy."""

from __future__ import annotations

from .backends import backend_class, config_for
from .backends.base import BackendConfig, ProviderError
from .models import Provider


def location_of(config: BackendConfig) -> str:
    """The location of a configuration ("" when it is too incomplete to have one)."""
    try:
        return backend_class(config.kind).location_of(config)
    except (ProviderError, KeyError, ValueError):
        return ""


def location_taken(*, config: BackendConfig, exclude_pk: int | None = None) -> Provider | None:
    """Another provider that writes to the place ``config`` names, if any."""
    place = location_of(config)
    if not place:
        return None
    for other in Provider.objects.exclude(pk=exclude_pk):
        if location_of(config_for(other)) == place:
            return other
    return None
