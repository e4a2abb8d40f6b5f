"""Bucket lifecycle rules, provider-neutral: the provider itself moves objects to colder classes by age.

A backend that declares ``lifecycle_rules`` reads them with ``lifecycle_get()`` and installs ours with
``lifecycle_put(rules)``. Ours are marked by their id (``OUR_RULE_PREFIX``); a put replaces ours only and keeps
every other rule of the bucket exactly as it was, and leaves the bucket alone when ours are already in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

OUR_RULE_PREFIX = "wedbackup-"


@dataclass(frozen=True)
class LifecycleRule:
    """Objects under ``prefix`` (and of at least ``min_size`` bytes) go to each class once they are that many days
    old. ``raw``: the provider's own document of a rule that is not ours, kept as read (never rewritten)."""

    id: str
    prefix: str
    transitions: tuple[tuple[int, str], ...]
    min_size: int = 0
    raw: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def ours(self) -> bool:
        return self.id.startswith(OUR_RULE_PREFIX)


def rules_check(rules: Iterable[LifecycleRule], storage_classes: tuple[str, ...]) -> list[LifecycleRule]:
    """The rules to install, refused loudly when one is not ours or cannot be right (ValueError)."""
    out = list(rules)
    ids = [r.id for r in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"lifecycle rule ids repeat: {ids}")
    for r in out:
        if not r.ours:
            raise ValueError(f"lifecycle rule {r.id!r}: ours must start with {OUR_RULE_PREFIX!r}")
        days = [d for d, _ in r.transitions]
        if not r.transitions or days != sorted(set(days)) or days[0] < 0:
            raise ValueError(f"lifecycle rule {r.id!r}: transitions must be at distinct ages, youngest first")
        order = [storage_classes.index(c) if c in storage_classes else -1 for _, c in r.transitions]
        if min(order) < 1 or order != sorted(set(order)):
            raise ValueError(f"lifecycle rule {r.id!r}: each transition must go to a colder known class")
    return out
