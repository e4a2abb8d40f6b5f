"""The right to erasure: a wedding's objects deleted everywhere (through the guarded path), then its records."""

from __future__ import annotations

from django.db import transaction

from .deletion import wedding_erase
from .models import Wedding


def wedding_erasure(*, wedding: Wedding, by: str = "system") -> dict:
    """Erase the wedding's objects on every provider, then its rows (the audit event keeps the report)."""
    objects = wedding_erase(wedding=wedding, by=by)
    report = {"slug": wedding.slug, "objects": objects, "assets": wedding.assets.count()}
    with transaction.atomic():
        Wedding.objects.filter(pk=wedding.pk).delete()
    return report
