"""Marking a copy damaged after a check read it: only the copy that was read, never a newer one."""

from __future__ import annotations

from django.utils import timezone

from .models import Replica


def replica_mark_damaged(*, replica: Replica, why: str) -> bool:
    """Mark ``replica`` failed with ``why`` if the row still describes the copy that was checked.

    A check (scrub, failover survivors) reads a copy, then judges it. Meanwhile the copy may have been pruned,
    moved or uploaded again under the same key and verified: that newer copy is not the one found damaged,
    so the row is matched on everything the check saw (status, key, sha256, when it was verified).
    Returns whether it was marked."""
    return bool(Replica.objects.filter(
        pk=replica.pk, status=Replica.Status.VERIFIED, object_key=replica.object_key, sha256=replica.sha256,
        verified_at=replica.verified_at,
    ).update(status=Replica.Status.FAILED, last_error=why, updated=timezone.now()))
