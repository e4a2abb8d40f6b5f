"""Demo data for `make run`: a staff user and the providers on the local servers (the weddings: demo_fleet.py)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model

from providers.models import Provider

DEMO_USER = "demo"


def demo_user_ensure(var_dir: Path) -> tuple[str, str]:
    """A staff superuser whose password is generated once into var/ (printed by make run)."""
    path = var_dir / "demo_password"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(12))
        os.chmod(path, 0o600)
    password = path.read_text().strip()
    user, _ = get_user_model().objects.get_or_create(username=DEMO_USER, defaults={"email": "demo@example.com"})
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    return DEMO_USER, password


def demo_providers_apply(specs: list[dict]) -> list[Provider]:
    """Create or refresh the demo providers (endpoints and keys change each run)."""
    out = []
    for spec in specs:
        values = {k: v for k, v in spec.items() if k != "name"}
        provider, _ = Provider.objects.update_or_create(name=spec["name"], defaults=values)
        out.append(provider)
    return out
