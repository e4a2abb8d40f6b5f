"""The end of a backup job: temporary copies pruned where the policy allows, manifests written on every provider,
the couple's share link, the stored figures, and the job's outcome with what is still short and why.
"""

from __future__ import annotations

from django.utils import timezone

from .manifest import manifests_write
from .models import Asset, BackupJob, Replica
from .repair import repair_prune_temporaries
from .sharing import wedding_share
from .snapshots import wedding_refresh


def backup_complete(*, job: BackupJob, gaps: dict[int, str], rounds: int) -> str:
    """Finish the job after its last round; ``gaps``: asset id -> what it still lacks. Returns the status."""
    if not gaps:
        repair_prune_temporaries(wedding=job.wedding)
    manifest_errors = manifests_write(wedding=job.wedding)
    wedding_share(wedding=job.wedding)  # a Dropbox folder link, when the couple allowed sharing; never raises
    total = job.wedding.assets.filter(missing_since__isnull=True).exclude(seen_complete_at__gt=job.created).count()
    paths = dict(Asset.objects.filter(pk__in=gaps).values_list("pk", "relative_path"))
    errors = dict(
        Replica.objects.filter(asset__wedding=job.wedding, status=Replica.Status.FAILED)
        .values_list("asset__relative_path", "last_error")
    )
    status = BackupJob.Status.SUCCEEDED
    if gaps:
        status = BackupJob.Status.PARTIAL if len(gaps) < total else BackupJob.Status.FAILED
    summary = "; ".join(f"{paths[a]}: {gap}" + (f" ({errors[paths[a]]})" if paths[a] in errors else "")
                        for a, gap in list(gaps.items())[:20])
    if manifest_errors:
        summary = "; ".join([summary, *manifest_errors]).strip("; ")
    wedding_refresh(job.wedding)  # before the job shows as finished, so the console agrees with it
    BackupJob.objects.filter(pk=job.pk).update(
        status=status, finished_at=timezone.now(), files_done=total - len(gaps), files_failed=len(gaps),
        files_planned=total, error_summary=summary[:4000],
        result={"protected": total - len(gaps), "below_policy": len(gaps), "rounds": rounds,
                "manifest_errors": manifest_errors},
    )
    return status
