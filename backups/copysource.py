"""A surviving copy stands in for a source file that is gone or changed: a repair after a scrub, a drill or a
failover check found a damaged copy must not depend on the studio's disk still holding the file. The bytes come
through the restore path (best readable copy first, sha256 checked against the catalogue, fallback to the next)
into a private temporary file, which the upload then reads like the source; the caller removes it. A temporary
folder without room for it is an ``OSError`` (ENOSPC) that says so, never a silent "no copy"."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from providers.models import Provider

from .models import Asset, Replica
from .placement import provider_states
from .restore import RestoreReport, asset_restore_to, replicas_best_first

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def copy_fetch(*, asset: Asset, exclude: set[int]) -> Path | None:
    """The asset's catalogued bytes from its best verified copy outside ``exclude`` (replica ids), in a new
    temporary folder; None when no copy yields them (archived copies are not rehydrated for this)."""
    candidates = [r for r in asset.replicas.select_related("provider")
                  if r.pk not in exclude and r.status == Replica.Status.VERIFIED and r.sha256 == asset.sha256
                  and r.provider.enabled and r.provider.status != Provider.Status.DOWN]
    if not candidates:
        return None
    hours = {(s.id, cls): h for s in provider_states() for cls, h in s.restore_hours.items()}
    folder = Path(tempfile.mkdtemp(prefix="wedbackup-copy-"))
    target, report = folder / "asset", RestoreReport()
    try:
        if shutil.disk_usage(folder).free < asset.size:
            raise _no_room(asset, folder)
        if asset_restore_to(asset, target, replicas_best_first(candidates, hours), {}, report,
                            include_archived=False):
            return target
        if os.strerror(errno.ENOSPC) in report.failed.get(asset.relative_path, ""):  # filled up while written
            raise _no_room(asset, folder)
    except BaseException:  # a full disk, no key: nothing of ours is left behind
        shutil.rmtree(folder, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    return None


def _no_room(asset: Asset, folder: Path) -> OSError:
    return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: no room for a {asset.size}-byte copy standing in "
                                 f"for the source in the temporary folder {folder.parent}")


def copy_discard(path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)
