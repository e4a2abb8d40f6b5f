"""Is an asset protected? Invariant 1, in one pure function the engine, the console and the tests share."""

from __future__ import annotations

from dataclasses import dataclass

from providers.residency import region_allowed

from .routing import Rules


@dataclass(frozen=True)
class Copy:
    provider_id: int
    kind: str
    zone: str
    verified: bool
    current: bool  # holds the asset's current sha256
    restore_hours: float = 0.0
    available: bool = True  # the provider is not down: a copy we cannot reach protects nobody today


def protection_gap(copies: list[Copy], rules: Rules, wedding_zone: str) -> str:
    """Empty when the asset meets the policy; otherwise what is missing, in words."""
    good = [c for c in copies if c.verified and c.current and c.available]
    if rules.enforce_residency:
        outside = [c for c in good if not region_allowed(wedding_zone, c.zone)]
        if outside:
            return f"{len(outside)} cop{'y' if len(outside) == 1 else 'ies'} outside {wedding_zone} residency"
    problems = []
    if len(good) < rules.min_copies:
        problems.append(f"{len(good)} of {rules.min_copies} verified copies")
    vendors = {c.kind for c in good}
    if len(vendors) < rules.min_distinct_providers:
        problems.append(f"{len(vendors)} of {rules.min_distinct_providers} distinct providers")
    if good and not any(c.restore_hours <= rules.max_restore_hours for c in good):
        problems.append(f"no copy restorable within {rules.max_restore_hours} h")
    return "; ".join(problems)
