"""A request to bring a file back from an archive class (Glacier, Deep Archive, Azure Archive): who asked, which
copy, and where it stands. Imported by ``backups.models`` so the app registry knows it; its foreign keys are
named by string, so it imports nothing of this app."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

READY_DAYS = 2  # a rehydrated copy stays readable this long (the restore days asked of S3; Azure's move is for good)


class Rehydration(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting"  # asked of the provider; polled until it says the copy is readable
        READY = "ready"  # readable for the restore's days: the download serves it
        FAILED = "failed"

    asset = models.ForeignKey("backups.Asset", on_delete=models.CASCADE, related_name="rehydrations")
    replica = models.ForeignKey("backups.Replica", null=True, on_delete=models.SET_NULL, related_name="+")
    provider_name = models.CharField(max_length=64)
    storage_class = models.CharField(max_length=32, blank=True)
    hours = models.FloatField(help_text="What the provider's class announces for a restore.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.WAITING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    notify = models.JSONField(default=list, blank=True, help_text="Ids of the users told when it is ready.")
    requested_at = models.DateTimeField(default=timezone.now)
    asked_at = models.DateTimeField(null=True, blank=True, help_text="When the provider was asked to restore.")
    ready_at = models.DateTimeField(null=True, blank=True)
    polls = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    rq_job_id = models.CharField(max_length=64, blank=True, help_text="The scheduled poll.")

    class Meta:
        ordering = ["-requested_at"]
        constraints = [models.UniqueConstraint(fields=["asset"], condition=Q(status="waiting"),
                                               name="rehydration_one_waiting_per_asset")]
        indexes = [models.Index(fields=["asset", "-requested_at"])]
        permissions = [("rehydrate_asset", "Can ask an archive to rehydrate a file (a fee applies)")]

    def __str__(self) -> str:
        return f"rehydration of asset {self.asset_id} on {self.provider_name} ({self.status})"
