from __future__ import annotations

from django.db import models
from django.utils import timezone

from . import residency
from .crypto import EncryptedJSONField


class Provider(models.Model):
    class Kind(models.TextChoices):
        AWS_S3 = "aws_s3", "AWS S3"
        WASABI = "wasabi", "Wasabi"
        GCS = "gcs", "Google Cloud Storage"
        AZURE_BLOB = "azure_blob", "Azure Blob Storage"
        B2 = "b2", "Backblaze B2"
        DROPBOX = "dropbox", "Dropbox Business"
        BOX = "box", "Box"
        WATCHED_FOLDER = "watched_folder", "Watched folder (Carbonite and other agents)"

    class Status(models.TextChoices):
        ACTIVE = "active"
        DEGRADED = "degraded"
        DOWN = "down"
        DRAINING = "draining"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    region = models.CharField(max_length=64, blank=True)
    residency_zone = models.CharField(max_length=8, choices=residency.ZONES, default=residency.NONE, editable=False)
    endpoint = models.URLField(blank=True, help_text="Override of the provider's API endpoint (local servers).")
    bucket = models.CharField(max_length=1024, help_text="Bucket, container, root folder or directory.")
    default_storage_class = models.CharField(max_length=32, blank=True)
    credentials = EncryptedJSONField(blank=True, default=dict)
    options = models.JSONField(blank=True, default=dict, help_text="Backend options, e.g. server-side encryption.")
    enabled = models.BooleanField(default=True)
    capacity_bytes = models.BigIntegerField(null=True, blank=True, help_text="Quota; empty means unlimited.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    status_changed_at = models.DateTimeField(default=timezone.now)
    notes = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("can_failover", "Can mark providers down/up and run probes")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.residency_zone = residency.zone_for_region(self.region)
        super().save(*args, **kwargs)

    @property
    def accepts_work(self) -> bool:
        return self.enabled and self.status in (self.Status.ACTIVE, self.Status.DEGRADED)


class ProviderHealthCheck(models.Model):
    class Source(models.TextChoices):
        PROBE = "probe"
        UPLOAD = "upload"
        RESTORE = "restore"

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="health_checks")
    checked_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PROBE)
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["provider", "-checked_at"])]

    def __str__(self) -> str:
        return f"{self.provider} {'ok' if self.ok else 'failed'} at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class FailoverEvent(models.Model):
    class Trigger(models.TextChoices):
        AUTOMATIC = "automatic"
        MANUAL = "manual"

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="failover_events")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    reason = models.TextField()
    started_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # What moved where: [{"asset": id, "to": provider name, "reason": ...}] summarised per alternate.
    redirected = models.JSONField(default=dict, blank=True)
    affected_weddings = models.PositiveIntegerField(default=0)
    affected_assets = models.PositiveIntegerField(default=0)
    estimated_seconds = models.FloatField(null=True, blank=True)
    actual_seconds = models.FloatField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["provider", "-started_at"])]

    def __str__(self) -> str:
        return f"failover from {self.provider} at {self.started_at:%Y-%m-%d %H:%M}"
