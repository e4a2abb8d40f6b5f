"""Restore a wedding from its best healthy replicas: sha256 checked, atomic writes, fall back on any error."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from providers.backends import backend_for
from providers.backends.base import Backend, NeedsRestore, ObjectNotFound, ProviderError
from providers.breaker import breaker_record
from providers.models import Provider

from . import encryption
from .models import Asset, Replica, Wedding
from .placement import provider_states


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # path -> every attempt's error
    rehydrating: list[str] = field(default_factory=list)
    fallbacks: int = 0
    bytes: int = 0

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _ordered(replicas: list[Replica], hours: dict[tuple[int, str], float]) -> list[Replica]:
    """Best first: instantly readable, healthy, then the provider's name for a stable order."""
    def score(r: Replica) -> tuple:
        return (hours.get((r.provider_id, r.storage_class), 0) > 0,
                r.provider.status != Provider.Status.ACTIVE, r.provider.name)

    return sorted(replicas, key=score)


def _safe_target(root: Path, relative_path: str) -> Path:
    target = (root / relative_path).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"{relative_path!r} would be written outside {root}")
    return target


def asset_restore_to(asset: Asset, target: Path, candidates: list[Replica], backends: dict[int, Backend],
                     report: RestoreReport, *, include_archived: bool) -> bool:
    """Try each candidate until one yields bytes whose sha256 matches; write them atomically."""
    errors = []
    for n, replica in enumerate(candidates):
        backend = backends.setdefault(replica.provider_id, backend_for(replica.provider))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".restore-")
        try:
            digest = hashlib.sha256()
            key = encryption.wedding_data_key(asset.wedding) if replica.encrypted else None
            with os.fdopen(fd, "wb") as out, backend.open(replica.object_key) as src:
                for chunk in encryption.plaintext_chunks(src, encrypted=replica.encrypted, data_key=key):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != asset.sha256:
                raise ProviderError("sha256 of the restored bytes differs from the catalogue")
            os.replace(tmp, target)
            breaker_record(replica.provider_id, True)
            report.restored.append(asset.relative_path)
            report.bytes += asset.size
            report.fallbacks += n > 0
            return True
        except NeedsRestore as exc:
            errors.append(f"{replica.provider.name}: {exc}")
            if include_archived:
                backend.request_restore(replica.object_key)
                report.rehydrating.append(f"{replica.provider.name}: {asset.relative_path}")
        except (ProviderError, OSError) as exc:
            errors.append(f"{replica.provider.name}: {exc}")
            if isinstance(exc, ProviderError) and not isinstance(exc, ObjectNotFound):
                breaker_record(replica.provider_id, False, str(exc), source="restore")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    report.failed[asset.relative_path] = "; ".join(errors) or "no verified replica"
    return False


def wedding_restore(*, wedding: Wedding, to: Path, only: str | None = None,
                    include_archived: bool = False) -> RestoreReport:
    """Restore every asset (or those matching the ``only`` glob) under ``to``."""
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    hours = {(s.id, cls): h for s in provider_states() for cls, h in s.restore_hours.items()}
    report = RestoreReport()
    backends: dict[int, Backend] = {}
    assets = wedding.assets.prefetch_related("replicas__provider").order_by("relative_path")
    for asset in assets:
        if only and not fnmatch.fnmatch(asset.relative_path, only):
            continue
        candidates = [
            r for r in asset.replicas.all()
            if r.status == Replica.Status.VERIFIED and r.sha256 == asset.sha256
            and r.provider.enabled and r.provider.status != Provider.Status.DOWN
        ]
        target = _safe_target(to, asset.relative_path)
        asset_restore_to(asset, target, _ordered(candidates, hours), backends, report,
                         include_archived=include_archived)
    _record_access(wedding, report)
    return report


def wedding_zip(wedding: Wedding) -> tuple[Path, RestoreReport]:
    """Restore into a temporary folder and pack it as a zip (the console's download)."""
    work = Path(tempfile.mkdtemp(prefix=f"restore-{wedding.slug}-"))
    report = wedding_restore(wedding=wedding, to=work / "files")
    archive = work / f"{wedding.slug}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for rel in report.restored:
            zf.write(work / "files" / rel, arcname=rel)
    return archive, report


def _record_access(wedding: Wedding, report: RestoreReport) -> None:
    if not report.bytes:
        return
    from costs.model import access_record

    access_record(wedding=wedding, kind="restore", bytes=report.bytes)
