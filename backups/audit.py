"""Who did what, when, to what: one AuditEvent per action that touches client data or safety (invariant 10)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    Actor = AbstractBaseUser | str | None  # a staff user, a label such as "cli:alice", or None for the system


def actor_label(by: Actor) -> str:
    if by is None:
        return "system"
    return by if isinstance(by, str) else by.get_username()


def audit_record(*, by: Actor, action: str, target: str, details: dict | None = None) -> AuditEvent:
    actor = None if by is None or isinstance(by, str) else by
    return AuditEvent.objects.create(actor=actor, actor_label=actor_label(by), action=action, target=target[:255],
                                     details=details or {})


def provider_change_record(*, provider, by, created: bool, fields: list[str], **_) -> None:
    """Receiver of ``providers.signals.provider_changed``: who changed which settings of a provider (credentials
    only as the word "credentials", never their values)."""
    audit_record(by=by, action="provider.create" if created else "provider.change",
                 target=f"provider:{provider.name}", details={"fields": sorted(fields)})
