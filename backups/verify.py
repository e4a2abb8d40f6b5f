"""Verify a wedding's replicas (head + checksum, or a deep re-read), find orphans, and repair to policy."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from providers.backends import backend_for
from providers.backends.base import Backend, ProviderError
from providers.models import Provider

from .deletion import stray_delete
from .integrity import replica_check
from .layout import manifest_key, wedding_prefix
from .limits import ProviderSlots
from .models import Replica, Wedding
from .signals import copies_damaged
from .snapshots import wedding_refresh

VERIFY_THREADS = 8  # replicas checked at once, each within its provider's slots (restore's pool size)


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    mismatched: list[str] = field(default_factory=list)  # "provider: key: why"
    unreachable: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    orphans_deleted: int = 0
    repair_job: int | None = None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def wedding_verify(*, wedding: Wedding, deep: bool = False, clean_orphans: bool = True, requested_by=None,
                   on_progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Check every verified replica; mismatches are marked failed and a repair job is started (by the receiver
    of ``signals.copies_damaged``: the job machinery sits above this module). ``on_progress(done, total)`` hears
    of each replica checked, in this thread. The checks run ``VERIFY_THREADS`` at a time; the database is
    written here, as each ends."""
    report = VerifyReport()
    # Copies a catalogue rebuild could not check (their provider was unreachable) are checked here too.
    pending = Q(status=Replica.Status.FAILED, last_error__startswith=Replica.REBUILT_UNCHECKED)
    replicas = list(
        Replica.objects.filter(Q(status=Replica.Status.VERIFIED) | pending, asset__wedding=wedding)
        .select_related("provider", "asset__wedding")
    )
    backends: dict[int, Backend] = {}
    for replica in replicas:
        if replica.provider_id not in backends:
            backends[replica.provider_id] = backend_for(replica.provider)
    slots = ProviderSlots()

    def check(replica: Replica) -> str | ProviderError:
        try:
            with slots.hold(replica.provider_id):
                return replica_check(replica, backends[replica.provider_id], deep=deep)
        except ProviderError as exc:
            return exc

    if on_progress is not None:
        on_progress(0, len(replicas))
    pool = ThreadPoolExecutor(max_workers=VERIFY_THREADS, thread_name_prefix="verify")
    try:
        futures = {pool.submit(check, replica): replica for replica in replicas}
        for done, future in enumerate(as_completed(futures), start=1):
            _verify_record(futures[future], future.result(), report, pending)
            if on_progress is not None:
                on_progress(done, len(replicas))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        slots.close()
    _find_orphans(wedding, report, clean=clean_orphans)
    if report.mismatched:
        started = [job for _, job in copies_damaged.send(sender=Wedding, wedding=wedding, requested_by=requested_by)
                   if job is not None]
        report.repair_job = started[0].pk if started else None
    wedding_refresh(wedding)  # mismatches put files at risk until the repair has run
    return report


def _verify_record(replica: Replica, problem: str | ProviderError, report: VerifyReport, pending: Q) -> None:
    """One replica's check, in the database (in the calling thread, never in the pool's)."""
    report.checked += 1
    if isinstance(problem, ProviderError):
        report.unreachable.append(f"{replica.provider.name}: {replica.object_key}: {problem}")
        return
    was = Q(status=replica.status) & (pending if replica.status == Replica.Status.FAILED else Q())
    if not problem and replica.status == Replica.Status.FAILED:
        if Replica.objects.filter(was, pk=replica.pk).update(
                status=Replica.Status.VERIFIED, last_error="", verified_at=timezone.now(), updated=timezone.now()):
            report.ok += 1
        return
    if problem:
        # Only a copy still recorded as verified is marked failed: one a cost move or a prune removed while we
        # looked (through the guarded delete) is not damage, and its DELETED row must stay DELETED.
        if Replica.objects.filter(was, pk=replica.pk).update(
                status=Replica.Status.FAILED, last_error=problem, updated=timezone.now()):
            report.mismatched.append(f"{replica.provider.name}: {replica.object_key}: {problem}")
        else:
            report.checked -= 1
    else:
        report.ok += 1


def _find_orphans(wedding: Wedding, report: VerifyReport, *, clean: bool) -> None:
    """Objects under the wedding's prefix that no replica accounts for (e.g. a crash after upload, before
    the database write). Removed through ``deletion.stray_delete``, which checks again at the moment of
    deletion that nothing references the object, that no job writing the wedding's objects runs, and that the
    object is old enough: a copy in flight is never mistaken for an orphan."""
    for provider in Provider.objects.filter(enabled=True).exclude(status=Provider.Status.DOWN):
        known = set(
            Replica.objects.filter(asset__wedding=wedding, provider=provider)
            .exclude(status=Replica.Status.DELETED).values_list("object_key", flat=True)
        )
        known.add(manifest_key(wedding))
        backend = backend_for(provider)
        if backend.case_insensitive:  # a listing may spell a folder as another key first wrote it
            known = {key.casefold() for key in known}
        try:
            for info in backend.list(wedding_prefix(wedding)):
                if (info.key.casefold() if backend.case_insensitive else info.key) in known:
                    continue
                report.orphans.append(f"{provider.name}: {info.key}")
                if clean and stray_delete(provider=provider, wedding=wedding, info=info,
                                          reason="orphan: no copy of the wedding accounts for it"):
                    report.orphans_deleted += 1
        except ProviderError as exc:
            report.unreachable.append(f"{provider.name}: listing failed: {exc}")


