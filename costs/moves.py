"""One replica at a time: a native class change, or copy-verify-then-delete to another provider.

Before each step the asset's policy is checked on its copies as they would be after that step, so the
policy holds at every moment: a class change that would leave no fast copy is refused, and an old copy
is deleted only once the new one is verified and the asset is protected without the old one.
"""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from backups.deletion import DeleteRefused, replica_delete
from backups.layout import object_key
from backups.limits import provider_slot
from backups.models import Asset, Replica
from backups.planning import copy_of
from backups.protection import protection_gap
from backups.routing import ProviderState, Rules
from backups.uploads import replica_is_current, replica_upload
from providers.backends import backend_for
from providers.backends.base import Backend, IntegrityError, ObjectInfo, PermanentError, ProviderError


class PolicyWouldBreak(Exception):
    """The step would leave the asset below policy: it is skipped and reported."""


class Steps:
    """Shared state of one apply run: backends per provider, provider states, the wedding's rules."""

    def __init__(self, rules: Rules, states: dict[int, ProviderState], zone: str, *, by: str = "system"):
        self.rules, self.states, self.zone, self.by = rules, states, zone, by
        self._backends: dict[int, Backend] = {}

    def backend(self, replica: Replica) -> Backend:
        if replica.provider_id not in self._backends:
            self._backends[replica.provider_id] = backend_for(replica.provider)
        return self._backends[replica.provider_id]

    def gap(self, asset: Asset, replicas: list[Replica]) -> str:
        copies = [copy_of(r, asset, self.states[r.provider_id]) for r in replicas]
        gap = protection_gap(copies, self.rules, self.zone)
        good = [c for c in copies if c.verified and c.current and c.available]
        if not gap and not any(c.restore_hours == 0 for c in good):
            gap = "no instantly readable copy"
        return gap

    def live(self, asset: Asset) -> list[Replica]:
        return list(Replica.objects.filter(asset=asset, status=Replica.Status.VERIFIED).select_related("provider"))

    def change_class(self, replica: Replica, storage_class: str) -> None:
        """Native class change, confirmed with head, then the row updated."""
        asset = replica.asset
        after = [_with_class(r, storage_class) if r.pk == replica.pk else r for r in self.live(asset)]
        gap = self.gap(asset, after)
        if gap:
            raise PolicyWouldBreak(f"{asset.relative_path}: {gap} after the change")
        backend = self.backend(replica)
        if not backend.can_change_class or storage_class not in backend.storage_classes:
            raise PermanentError(f"{replica.provider.name} cannot change storage class to {storage_class!r}")
        backend.change_storage_class(replica.object_key, storage_class)
        head = backend.head(replica.object_key)
        found = (head.storage_class or backend.storage_classes[0]) if head else None
        if found != storage_class:
            raise IntegrityError(f"{replica.provider.name}: {replica.object_key!r} is in {found!r}, not "
                                 f"{storage_class!r}, after the class change")
        Replica.objects.filter(pk=replica.pk).update(storage_class=storage_class, etag=head.etag or "",
                                                     version_id=head.version_id or "", updated=timezone.now())

    def move(self, replica: Replica, provider_id: int, storage_class: str) -> None:
        """Copy to the other provider, verify, and only then delete the old copy."""
        asset = replica.asset
        planned = Replica(asset=asset, provider_id=provider_id, storage_class=storage_class, sha256=asset.sha256,
                          status=Replica.Status.VERIFIED)
        gap = self.gap(asset, [r for r in self.live(asset) if r.pk != replica.pk and r.provider_id != provider_id]
                       + [planned])
        if gap:  # checked before a byte is copied: a copy outside the residency zone must never exist
            raise PolicyWouldBreak(f"{asset.relative_path}: {gap} after moving off {replica.provider.name}")
        target, _ = Replica.objects.get_or_create(
            asset=asset, provider_id=provider_id,
            defaults={"object_key": object_key(asset), "storage_class": storage_class,
                      "status": Replica.Status.PLANNED},
        )
        target = Replica.objects.select_related("provider", "asset__wedding").get(pk=target.pk)
        if not replica_is_current(target, asset):
            Replica.objects.filter(pk=target.pk).update(
                status=Replica.Status.UPLOADING, object_key=object_key(asset), storage_class=storage_class,
                region=target.provider.region, attempts=F("attempts") + 1, permanent_failure=False,
                reason=f"cost optimisation: moved from {replica.provider.name}", updated=timezone.now())
            target.refresh_from_db()
            info = self._stream(asset, target, storage_class)
            if info is not None:
                _mark_verified(target, asset, info, storage_class)
            elif not replica_upload(target, backend=self.backend(target)):  # the source folder, if still there
                target.refresh_from_db()
                raise ProviderError(f"copy to {target.provider.name} failed: {target.last_error}")
        remaining = [r for r in self.live(asset) if r.pk != replica.pk]
        gap = self.gap(asset, remaining)
        if gap:
            raise PolicyWouldBreak(f"{asset.relative_path}: {gap} without the copy on {replica.provider.name}")
        try:  # the guarded path confirms the new copy (and the others) on the providers before deleting
            replica_delete(replica=replica, reason=f"cost optimisation: moved to {target.provider.name}",
                           by=self.by, states=self.states)
        except DeleteRefused as exc:
            raise PolicyWouldBreak(str(exc)) from exc

    def _stream(self, asset: Asset, target: Replica, storage_class: str) -> ObjectInfo | None:
        """Stream from an existing replica (fast ones first) into the target's put; the sha256 is checked."""
        sources = sorted((r for r in self.live(asset) if r.pk != target.pk and r.sha256 == asset.sha256),
                         key=lambda r: self.states[r.provider_id].restore_hours.get(r.storage_class, 0))
        dst = self.backend(target)
        for src in sources:
            try:
                with provider_slot(target.provider_id), self.backend(src).open(src.object_key) as fh:
                    return dst.put(target.object_key, fh, asset.size, sha256=asset.sha256,
                                   content_type=asset.content_type, storage_class=storage_class or None,
                                   metadata={"sha256": asset.sha256, "wedding": asset.wedding.slug})
            except ProviderError:
                continue  # archived, missing, or corrupt on the way: try the next copy
        return None


def _with_class(replica: Replica, storage_class: str) -> Replica:
    copy = Replica(**{f.attname: getattr(replica, f.attname) for f in Replica._meta.concrete_fields})
    copy.storage_class = storage_class
    return copy


def _mark_verified(target: Replica, asset: Asset, info: ObjectInfo, storage_class: str) -> None:
    Replica.objects.filter(pk=target.pk).update(
        status=Replica.Status.VERIFIED, size=info.size, checksums=info.checksums, sha256=asset.sha256,
        storage_class=info.storage_class or storage_class, version_id=info.version_id or "", etag=info.etag or "",
        verified_at=timezone.now(), last_error="", permanent_failure=False, updated=timezone.now())
