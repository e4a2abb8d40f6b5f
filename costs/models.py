from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class CatalogVersion(models.Model):
    """A loaded price catalog; the newest is in force. Kept so past cost figures stay explainable."""

    version = models.CharField(max_length=80, unique=True)
    effective_date = models.DateField()
    loaded_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=1024, blank=True)
    data = models.JSONField()

    class Meta:
        ordering = ["-loaded_at"]

    def __str__(self) -> str:
        return self.version


class AccessRecord(models.Model):
    """Restores, downloads and previews, so the optimiser knows which weddings are still looked at."""

    class Kind(models.TextChoices):
        RESTORE = "restore"
        DOWNLOAD = "download"
        PREVIEW = "preview"

    wedding = models.ForeignKey("backups.Wedding", on_delete=models.CASCADE, related_name="access_records")
    asset_kind = models.CharField(max_length=10, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    bytes = models.BigIntegerField(default=0)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["wedding", "-at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.bytes} B of {self.wedding_id}"


class Optimization(models.Model):
    """One proposal the optimiser made, and what happened when it was applied."""

    class Status(models.TextChoices):
        PROPOSED = "proposed"
        APPLYING = "applying"
        APPLIED = "applied"
        PARTIAL = "partial"
        FAILED = "failed"
        SUPERSEDED = "superseded"

    class Kind(models.TextChoices):
        LIFECYCLE = "lifecycle"
        PROVIDER_MIX = "provider_mix"
        COMPRESSION = "compression"
        DEDUP = "dedup"

    wedding = models.ForeignKey("backups.Wedding", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="optimizations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    summary = models.TextField()
    # The changes as filters, not replica ids (millions would not scale; filters keep re-runs idempotent):
    # [{"provider": id, "asset_kind": ..., "min_size": ..., "max_size": ..., "from_class": ..., "to_class": ...,
    #   "to_provider": id or None}]
    changes = models.JSONField(default=list)
    current_monthly = models.DecimalField(max_digits=14, decimal_places=4)
    new_monthly = models.DecimalField(max_digits=14, decimal_places=4)
    one_off_cost = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    payback_months = models.FloatField(null=True, blank=True)
    realised_monthly_saving = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    catalog_version = models.CharField(max_length=80, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    job = models.ForeignKey("backups.BackupJob", null=True, blank=True, on_delete=models.SET_NULL)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "kind"])]
        permissions = [("apply_optimization", "Can apply cost optimisations (copy, verify, then delete)")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.summary[:60]}"

    @property
    def monthly_saving(self):
        return self.current_monthly - self.new_monthly


class CostSnapshot(models.Model):
    """The cost model's answer at one moment (costs.snapshots): what the console shows, and its history.
    Past days keep their last snapshot only, so the history stays one row per day."""

    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    catalog_version = models.CharField(max_length=80, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    # Eight places: a small fleet's cost is fractions of a cent, and the history should still show it move.
    current_monthly = models.DecimalField(max_digits=20, decimal_places=8)
    optimised_monthly = models.DecimalField(max_digits=20, decimal_places=8)
    savings_by_kind = models.JSONField(default=dict, help_text="{kind: monthly saving}, as strings.")
    by_provider_class = models.JSONField(default=list, help_text="[{provider, storage_class, monthly}]")
    proposals = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0, help_text="How long the cost model took.")

    class Meta:
        ordering = ["-taken_at"]
        get_latest_by = "taken_at"

    def __str__(self) -> str:
        return f"{self.taken_at:%Y-%m-%d %H:%M}: {self.current_monthly} -> {self.optimised_monthly} {self.currency}"
