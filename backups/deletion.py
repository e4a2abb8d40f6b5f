"""The one guarded path for deleting a stored object (invariant 8): nothing else calls ``backend.delete()``.

``replica_delete`` removes one copy of an asset, and only after, under a per-asset lock held in Redis (so across
machines), it has re-read the asset's copies from the database and confirmed the surviving ones **on the
providers themselves** (a HEAD whose size and checksum match what was recorded), refused a survivor on the same
physical location as the copy (two provider rows on one bucket are one copy), and found the policy met by the
confirmed survivors alone. ``stray_delete`` removes an object no copy accounts for (an orphan, a stale manifest)
only when, at that moment, no copy references it, no job that writes the wedding's objects is running, and it is
old enough. Every delete, and every refusal, is an AuditEvent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import django_rq
from django.conf import settings
from django.utils import timezone

from providers.backends import backend_class, backend_for
from providers.backends.base import Backend, ObjectInfo, ProviderError
from providers.models import Provider

from .audit import audit_record
from .integrity import replica_check
from .layout import SYSTEM_PREFIX, index_key, wedding_prefix
from .models import AuditEvent, BackupJob, Replica, Wedding
from .placement import provider_states, rules_for
from .planning import copy_of
from .protection import protection_gap
from .routing import ProviderState

log = logging.getLogger(__name__)
LOCK_SECONDS = 600  # a holder that dies frees the lock after this
LOCK_WAIT = 120.0
# Jobs that write or move a wedding's objects: while one runs, an unreferenced object may be its work in flight.
WRITING_KINDS = (BackupJob.Kind.BACKUP, BackupJob.Kind.REPAIR, BackupJob.Kind.FAILOVER, BackupJob.Kind.OPTIMISE)


class DeleteRefused(Exception):
    """The delete would risk the last good copy (or break the policy): nothing was deleted."""


@contextmanager
def asset_lock(asset_id: int) -> Iterator[None]:
    """One deleter per asset at a time, on every machine (redis-py's lock; it expires if its holder dies)."""
    lock = django_rq.get_connection("default").lock(f"wedbackup:asset-lock:{asset_id}", timeout=LOCK_SECONDS,
                                                    blocking_timeout=LOCK_WAIT)
    if not lock.acquire():
        raise DeleteRefused(f"asset {asset_id} is locked by another delete")
    try:
        yield
    finally:
        lock.release()


def _survivors(replica: Replica, backends: dict[int, Backend]) -> tuple[list[Replica], list[str]]:
    """The asset's other copies confirmed on their providers now, and why the others do not count."""
    confirmed, doubts = [], []
    others = (Replica.objects.filter(asset_id=replica.asset_id, status=Replica.Status.VERIFIED)
              .exclude(pk=replica.pk).select_related("provider", "asset__wedding"))
    target_location = backends[replica.provider_id].location()
    for other in others:
        if other.sha256 != other.asset.sha256:
            doubts.append(f"{other.provider.name}: holds an older version")
            continue
        backend = backends.setdefault(other.provider_id, backend_for(other.provider))
        if not backend.location() or not target_location:
            doubts.append(f"{other.provider.name}: its physical location is unknown (no bucket configured)")
            continue
        if backend.location() == target_location:
            doubts.append(f"{other.provider.name}: the same physical location as {replica.provider.name}")
            continue
        try:
            problem = replica_check(other, backend, deep=False)
        except ProviderError as exc:
            problem = f"unreachable ({exc})"
        if problem:
            doubts.append(f"{other.provider.name}: {problem}")
        else:
            confirmed.append(other)
    return confirmed, doubts


def replica_delete(*, replica: Replica, reason: str, by: str = "system",
                   states: dict[int, ProviderState] | None = None) -> None:
    """Delete one stored copy, or raise DeleteRefused (nothing deleted) saying why. The row ends DELETED.
    ``states``: the provider states a caller deleting many copies already has (building them sums every
    replica's size, far too much to repeat per copy)."""
    target = f"replica:{replica.pk}"
    with asset_lock(replica.asset_id):
        replica = Replica.objects.select_related("provider", "asset__wedding").get(pk=replica.pk)
        if replica.status == Replica.Status.DELETED:
            return
        asset, wedding = replica.asset, replica.asset.wedding
        if wedding.legal_hold:
            raise DeleteRefused(f"{wedding.slug} is under legal hold: nothing of it is deleted")
        if replica.retain_until and replica.retain_until > timezone.now():
            raise DeleteRefused(f"{asset.relative_path} on {replica.provider.name} is locked until "
                                f"{replica.retain_until:%Y-%m-%d %H:%M} UTC (retention)")
        backends: dict[int, Backend] = {replica.provider_id: backend_for(replica.provider)}
        confirmed, doubts = _survivors(replica, backends)
        states = states if states is not None else {s.id: s for s in provider_states()}
        gap = protection_gap([copy_of(r, asset, states[r.provider_id]) for r in confirmed], rules_for(wedding),
                             wedding.residency_zone)
        details = {"provider": replica.provider.name, "key": replica.object_key, "reason": reason,
                   "survivors": [r.provider.name for r in confirmed], "doubts": doubts}
        if gap:
            audit_record(action="replica.delete_refused", target=target, by=by, details={**details, "gap": gap})
            raise DeleteRefused(f"{asset.relative_path}: {gap} without the copy on {replica.provider.name}"
                                + (f" ({'; '.join(doubts)})" if doubts else ""))
        Replica.objects.filter(pk=replica.pk).update(status=Replica.Status.DELETING, updated=timezone.now())
        try:
            backends[replica.provider_id].delete(replica.object_key)
        except ProviderError:
            Replica.objects.filter(pk=replica.pk).update(status=Replica.Status.VERIFIED, updated=timezone.now())
            raise
        Replica.objects.filter(pk=replica.pk).update(status=Replica.Status.DELETED, updated=timezone.now())
        audit_record(action="replica.delete", target=target, by=by, details=details)
        log.info("deleted %s on %s (%s)", replica.object_key, replica.provider.name, reason)


def catalogue_behind() -> bool:
    """The database was restored from a dump and no catalogue rebuild has run since: objects written after the dump
    have no rows yet, so nothing unaccounted for may be taken for a stray."""
    restored = AuditEvent.objects.filter(action="system_db.restore").order_by("-at").values_list("at", flat=True)[:1]
    if not restored:
        return False
    return not AuditEvent.objects.filter(action="catalog.rebuild", at__gt=restored[0]).exists()


def stray_min_age() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "WEDBACKUP_ORPHAN_MIN_AGE", 24 * 3600)))


def stray_delete(*, provider: Provider, wedding: Wedding, info: ObjectInfo, reason: str, by: str = "system",
                 min_age: dt.timedelta | None = None) -> bool:
    """Delete an object no copy accounts for; False (and nothing deleted) when any check says keep it."""
    min_age = stray_min_age() if min_age is None else min_age
    with asset_lock(-wedding.pk):  # the wedding's strays: one deleter at a time, as for an asset's copies
        if Wedding.objects.filter(pk=wedding.pk, legal_hold=True).exists():
            return False
        same_key = ({"object_key__iexact": info.key} if backend_class(provider.kind).case_insensitive
                    else {"object_key": info.key})
        referenced = Replica.objects.filter(provider=provider, **same_key).exclude(
            status=Replica.Status.DELETED).exists()
        busy = wedding.jobs.filter(status__in=[BackupJob.Status.QUEUED, BackupJob.Status.RUNNING],
                                   kind__in=WRITING_KINDS).exists()
        young = info.modified is None or timezone.now() - info.modified < min_age
        if referenced or busy or young or catalogue_behind():
            return False
        backend_for(provider).delete(info.key)
        audit_record(action="object.delete", target=f"provider:{provider.name}", by=by,
               details={"key": info.key, "reason": reason, "wedding": wedding.slug})
        return True


def manifest_delete(*, provider: Provider, wedding: Wedding, key: str, by: str = "system") -> bool:
    """Remove a wedding's manifest from a provider that no longer holds (or expects) any of its copies."""
    with asset_lock(-wedding.pk):
        if Wedding.objects.filter(pk=wedding.pk, legal_hold=True).exists():
            return False
        if Replica.objects.filter(provider=provider, asset__wedding=wedding).exclude(
                status__in=[Replica.Status.DELETED, Replica.Status.FAILED]).exists():
            return False
        backend_for(provider).delete(key)
        audit_record(action="object.delete", target=f"provider:{provider.name}", by=by,
               details={"key": key, "reason": "stale manifest: no copy of the wedding left here",
                        "wedding": wedding.slug})
        return True


def wedding_erase(*, wedding: Wedding, by: str = "system") -> list[str]:
    """Erase every stored object of the wedding on every provider (the couple's right to erasure), or raise
    DeleteRefused when a legal hold or a lock still holds. Returns "provider: key" for every object deleted;
    the rows are the caller's to remove. The one delete that may leave no copy: it is meant to."""
    deleted: list[str] = []
    with asset_lock(-wedding.pk):
        now = timezone.now()
        live = Replica.objects.filter(asset__wedding=wedding).exclude(status=Replica.Status.DELETED)
        if Wedding.objects.filter(pk=wedding.pk, legal_hold=True).exists():
            raise DeleteRefused(f"{wedding.slug} is under legal hold: it cannot be erased")
        locked = live.filter(retain_until__gt=now).order_by("-retain_until").first()
        if locked is not None:
            raise DeleteRefused(f"{wedding.slug} is locked until {locked.retain_until:%Y-%m-%d} (retention): it can "
                                "be erased once the retention period has passed")
        if wedding.jobs.filter(status__in=[BackupJob.Status.QUEUED, BackupJob.Status.RUNNING],
                               kind__in=WRITING_KINDS).exists():
            raise DeleteRefused(f"a job is still writing {wedding.slug}'s objects: erase it once it has ended")
        off = Provider.objects.filter(pk__in=live.values("provider_id"), enabled=False).values_list("name", flat=True)
        if off:
            raise DeleteRefused(f"{', '.join(off)} hold copies of {wedding.slug} but are disabled: enable them so "
                                "the erasure reaches every copy")
        try:
            for provider in Provider.objects.filter(enabled=True):
                backend = backend_for(provider)
                for info in backend.list(wedding_prefix(wedding)):
                    backend.delete(info.key)
                    deleted.append(f"{provider.name}: {info.key}")
                if backend.head(index_key(wedding.slug)) is not None:  # a rebuild must not find it listed
                    backend.delete(index_key(wedding.slug))
                    deleted.append(f"{provider.name}: {index_key(wedding.slug)}")
                live.filter(provider=provider).update(status=Replica.Status.DELETED, updated=now)
        finally:  # what was erased is on record even when a provider failed midway (run it again to finish)
            audit_record(by=by, action="wedding.erase", target=f"wedding:{wedding.slug}",
                         details={"objects": deleted, "count": len(deleted),
                                  "complete": not live.exists()})
    return deleted


def system_object_delete(*, provider: Provider, key: str, newer: ObjectInfo, reason: str, by: str = "system") -> bool:
    """Delete an old generation's object of WedBackup's own database dump (``layout.SYSTEM_PREFIX``) only once a newer
    generation is confirmed on the same provider (a HEAD whose size matches ``newer``); False when it is not."""
    if not key.startswith(SYSTEM_PREFIX) or not newer.key.startswith(SYSTEM_PREFIX):
        raise DeleteRefused(f"{key!r} is not a system database object")
    backend = backend_for(provider)
    found = backend.head(newer.key)
    if found is None or found.size != newer.size:
        return False
    backend.delete(key)
    audit_record(action="object.delete", target=f"provider:{provider.name}", by=by,
                 details={"key": key, "reason": reason, "kept": newer.key})
    return True
