from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from providers import residency
from providers.models import Provider

CRITICAL_DAYS_BEFORE = 7
CRITICAL_DAYS_AFTER = 2


class Plan(models.TextChoices):
    STANDARD = "standard"
    COST_SAVER = "cost-saver"
    PREMIUM = "premium"


class Wedding(models.Model):
    couple = models.CharField(max_length=200, help_text='e.g. "Ana & Ben"')
    slug = models.SlugField(max_length=120, unique=True, allow_unicode=False)
    date = models.DateField()
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    city = models.CharField(max_length=120, blank=True)
    residency_zone = models.CharField(
        max_length=8, choices=residency.ZONES, blank=True,
        help_text="Leave empty to derive from the country.",
    )
    plan = models.CharField(max_length=12, choices=Plan.choices, default=Plan.STANDARD)
    requires_ml_analysis = models.BooleanField(default=False)
    sharing_allowed = models.BooleanField(default=False, help_text="The couple allowed shared links.")
    shared_link = models.URLField(blank=True)
    legal_hold = models.BooleanField(
        default=False, help_text="Nothing of this wedding may be deleted anywhere while the hold is on.")
    source_path = models.CharField(max_length=1024, blank=True, help_text="Folder the wedding was imported from.")
    watch_source = models.BooleanField(default=True, help_text="Back up new files from the source folder by itself.")
    # The wedding's data key, wrapped by the master key (client-side encryption); never the key itself.
    wrapped_data_key = models.TextField(blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "couple"]
        indexes = [models.Index(fields=["date"]), models.Index(fields=["residency_zone", "plan"])]
        permissions = [
            ("import_wedding", "Can import a wedding folder from the server"),
            ("backup_wedding", "Can start backups, verifications and retries"),
            ("restore_wedding", "Can restore and download a wedding's files"),
            ("erase_wedding", "Can erase a wedding everywhere (once no hold or lock forbids it)"),
        ]

    def __str__(self) -> str:
        return f"{self.couple} ({self.date:%Y-%m-%d})"

    def save(self, *args, **kwargs):
        self.country = self.country.upper()
        if not self.residency_zone:
            self.residency_zone = residency.zone_for_country(self.country)
        if not self.slug:
            self.slug = unique_wedding_slug(self.couple, self.date)
        super().save(*args, **kwargs)

    def is_wedding_day_critical(self, today: dt.date | None = None) -> bool:
        """From 7 days before to 2 days after the date: the days when losing a file hurts most."""
        today = today or timezone.localdate()
        return (
            self.date - dt.timedelta(days=CRITICAL_DAYS_BEFORE)
            <= today
            <= self.date + dt.timedelta(days=CRITICAL_DAYS_AFTER)
        )

    @property
    def wedding_day_critical(self) -> bool:
        return self.is_wedding_day_critical()

    @property
    def priority(self) -> str:
        return "wedding_day_critical" if self.wedding_day_critical else "normal"


def unique_wedding_slug(couple: str, date: dt.date) -> str:
    base = slugify(f"{couple} {date:%Y-%m-%d}")[:100] or f"wedding-{date:%Y-%m-%d}"
    slug, n = base, 2
    while Wedding.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


class AssetKind(models.TextChoices):
    PHOTO = "photo"
    RAW_PHOTO = "raw_photo"
    VIDEO = "video"
    DOCUMENT = "document"
    OTHER = "other"


class Asset(models.Model):
    wedding = models.ForeignKey(Wedding, on_delete=models.CASCADE, related_name="assets")
    relative_path = models.CharField(max_length=1024)
    kind = models.CharField(max_length=10, choices=AssetKind.choices)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=120, default="application/octet-stream")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    source_location = models.CharField(max_length=2048, blank=True, help_text="Where the file was read from.")
    missing_since = models.DateTimeField(null=True, blank=True, help_text="Gone from the source; kept in backups.")
    source_mtime_ns = models.BigIntegerField(null=True, blank=True, help_text="Source file's mtime when catalogued.")
    seen_complete_at = models.DateTimeField(null=True, blank=True, help_text="These bytes were first seen complete.")
    protected_at = models.DateTimeField(null=True, blank=True, help_text="These bytes first met the policy.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["wedding", "relative_path"]
        constraints = [
            models.UniqueConstraint(fields=["wedding", "relative_path"], name="asset_unique_path_per_wedding"),
            models.CheckConstraint(condition=Q(size__gte=0), name="asset_size_non_negative"),
        ]
        indexes = [models.Index(fields=["wedding", "kind"]), models.Index(fields=["sha256"])]

    def __str__(self) -> str:
        return self.relative_path

    @property
    def megapixels(self) -> float:
        return (self.width or 0) * (self.height or 0) / 1_000_000


class BackupPolicy(models.Model):
    name = models.CharField(max_length=64, unique=True)
    is_default = models.BooleanField(default=False)
    min_copies = models.PositiveSmallIntegerField(default=3)
    min_distinct_providers = models.PositiveSmallIntegerField(default=2)
    enforce_residency = models.BooleanField(default=True)
    cross_region_copy = models.CharField(
        max_length=8, default="premium", choices=[("off", "Off"), ("premium", "Premium plans"), ("all", "All plans")],
        help_text="Ask for one copy in a second region of the same zone.",
    )
    critical_extra_copies = models.PositiveSmallIntegerField(default=1)
    retention_days = models.PositiveIntegerField(
        default=0, help_text="Days after the wedding date its copies are kept locked (object lock) where the "
                             "provider supports it; 0: no lock.")
    max_restore_hours = models.PositiveSmallIntegerField(
        default=12, help_text="At least one copy must be restorable within this many hours.",
    )
    client_side_encryption = models.BooleanField(default=False)
    scrub_days = models.PositiveSmallIntegerField(default=30, help_text="Every copy is read back within N days.")
    # {"premium": {"min_copies": 4}, "cost-saver": {"min_copies": 2}}
    plan_overrides = models.JSONField(default=dict, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "backup policies"
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_policy"),
            models.CheckConstraint(condition=Q(min_copies__gte=1), name="policy_min_copies_positive"),
            models.CheckConstraint(
                condition=Q(min_distinct_providers__gte=1) & Q(min_distinct_providers__lte=models.F("min_copies")),
                name="policy_distinct_providers_within_copies",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    # What a plan may override, and the smallest value each may take.
    OVERRIDABLE: ClassVar[dict[str, type]] = {
        "min_copies": int, "min_distinct_providers": int, "enforce_residency": bool, "cross_region_copy": bool,
        "critical_extra_copies": int, "max_restore_hours": int, "client_side_encryption": bool, "retention_days": int,
    }

    def clean(self) -> None:
        """Every plan's effective rules must be a policy the database itself would accept."""
        errors = []
        overrides = self.plan_overrides if isinstance(self.plan_overrides, dict) else None
        if overrides is None:
            raise ValidationError({"plan_overrides": "a mapping of plan -> {setting: value}"})
        for plan, values in overrides.items():
            if plan not in Plan.values:
                errors.append(f"{plan!r} is not a plan ({', '.join(Plan.values)})")
                continue
            if not isinstance(values, dict):
                errors.append(f"{plan}: a mapping of setting -> value")
                continue
            for key, value in values.items():
                kind = self.OVERRIDABLE.get(key)
                if kind is None:
                    errors.append(f"{plan}: {key!r} cannot be overridden")
                elif type(value) is not kind or (kind is int and value < 0):
                    errors.append(f"{plan}: {key} must be a {'non-negative integer' if kind is int else 'boolean'}")
            if errors:
                continue
            rules = self.for_plan(plan)
            if rules["min_copies"] < 1:
                errors.append(f"{plan}: min_copies must be at least 1 (0 would protect nothing)")
            if not 1 <= rules["min_distinct_providers"] <= rules["min_copies"]:
                errors.append(f"{plan}: min_distinct_providers must be between 1 and min_copies")
        if errors:
            raise ValidationError({"plan_overrides": errors})

    @classmethod
    def default(cls) -> BackupPolicy:
        policy = cls.objects.filter(is_default=True).first()
        return policy or cls.objects.create(name="default", is_default=True)

    def for_plan(self, plan: str) -> dict:
        """The effective rules for a plan: the policy's values with that plan's overrides."""
        values = {
            "min_copies": self.min_copies,
            "min_distinct_providers": self.min_distinct_providers,
            "enforce_residency": self.enforce_residency,
            "cross_region_copy": self.cross_region_copy == "all"
            or (self.cross_region_copy == "premium" and plan == Plan.PREMIUM),
            "critical_extra_copies": self.critical_extra_copies,
            "max_restore_hours": self.max_restore_hours,
            "retention_days": self.retention_days,
            "client_side_encryption": self.client_side_encryption,
        }
        values.update(self.plan_overrides.get(plan, {}))
        return values


class BackupJob(models.Model):
    class Kind(models.TextChoices):
        IMPORT = "import"
        BACKUP = "backup"
        RESTORE = "restore"
        VERIFY = "verify"
        OPTIMISE = "optimise"
        REPAIR = "repair"
        FAILOVER = "failover"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        PARTIAL = "partial"
        FAILED = "failed"
        CANCELLED = "cancelled"

    wedding = models.ForeignKey(Wedding, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    files_planned = models.PositiveIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    files_failed = models.PositiveIntegerField(default=0)
    bytes_planned = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    bytes_failed = models.BigIntegerField(default=0)
    rq_job_id = models.CharField(max_length=64, blank=True)
    queue = models.CharField(max_length=16, default="default")
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_summary = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "-created"]), models.Index(fields=["wedding", "-created"])]

    def __str__(self) -> str:
        target = self.wedding.slug if self.wedding_id else "fleet"
        return f"{self.kind} {target} #{self.pk} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if self.bytes_planned:
            return min(100, int(100 * self.bytes_done / self.bytes_planned))
        if self.files_planned:
            return min(100, int(100 * (self.files_done + self.files_failed) / self.files_planned))
        return 100 if self.status == self.Status.SUCCEEDED else 0

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class Replica(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned"
        UPLOADING = "uploading"
        VERIFIED = "verified"
        FAILED = "failed"
        DELETING = "deleting"
        DELETED = "deleted"

    # last_error of a copy released because its provider went down: retried elsewhere, not a failure of its own
    REDIRECTED = "provider down: redirected"
    REBUILT_UNCHECKED = "not checked since the catalogue was rebuilt"  # completed by the next verify

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="replicas")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="replicas")
    object_key = models.CharField(max_length=2048)
    storage_class = models.CharField(max_length=32, blank=True)
    region = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(default=0)
    # The checksums the provider reported and we matched: {"sha256": ..., "md5": ...}.
    checksums = models.JSONField(default=dict, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, help_text="The sha256 of the bytes this replica holds.")
    version_id = models.CharField(max_length=256, blank=True)
    # Object lock on the provider: the copy cannot be deleted or overwritten before this (renewed while the
    # wedding's retention period runs).
    retain_until = models.DateTimeField(null=True, blank=True)
    etag = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)
    reason = models.TextField(blank=True, help_text="Why the file is on this provider, in this class.")
    temporary = models.BooleanField(default=False, help_text="Extra copy made during a failover.")
    encrypted = models.BooleanField(default=False, help_text="Stored encrypted client-side (AES-256-GCM).")
    verified_at = models.DateTimeField(null=True, blank=True)
    scrubbed_at = models.DateTimeField(null=True, blank=True, help_text="Last read back and hashed in full.")
    last_error = models.TextField(blank=True)
    permanent_failure = models.BooleanField(default=False, help_text="Failed for a reason a retry will not fix.")
    attempts = models.PositiveSmallIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["asset", "provider"], name="replica_unique_asset_provider")]
        indexes = [
            models.Index(fields=["provider", "status"]),
            models.Index(fields=["status", "provider", "storage_class"]),
        ]

    def __str__(self) -> str:
        return f"{self.object_key} on {self.provider_id} ({self.status})"


class AuditEvent(models.Model):
    """Who did what, when, to what: every manual action."""

    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, blank=True, help_text="Username or 'system' / 'cli'.")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=255)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["-at"]),
            # "asset:<wedding>/..." prefixes for a wedding's timeline (pattern ops: LIKE 'x%' on PostgreSQL)
            models.Index(fields=["target"], opclasses=["varchar_pattern_ops"], name="audit_target_prefix"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target}"


class WeddingHealth(models.Model):
    """A wedding's protection as last computed (backups.snapshots): the console's fleet pages read this, not
    millions of replicas. Refreshed after every job on the wedding, on provider status changes, and
    periodically for the whole fleet; ``refreshed_at`` says how fresh it is."""

    wedding = models.OneToOneField(Wedding, primary_key=True, on_delete=models.CASCADE, related_name="health")
    files = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    good_copies = models.PositiveIntegerField(default=0, help_text="Verified, current copies on reachable providers.")
    assets_at_risk = models.PositiveIntegerField(default=0)
    bytes_at_risk = models.BigIntegerField(default=0)
    at_risk = models.BooleanField(default=False)
    last_protected_at = models.DateTimeField(null=True, blank=True, help_text="Newest file to reach the policy.")
    oldest_unprotected_at = models.DateTimeField(null=True, blank=True, help_text="Oldest file not yet protected.")
    rpo_p95_seconds = models.FloatField(null=True, blank=True, help_text="Complete to protected, last 30 days.")
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["at_risk"])]

    def __str__(self) -> str:
        return f"{self.wedding_id}: {'at risk' if self.at_risk else 'protected'} ({self.refreshed_at:%H:%M})"


class WeddingUsage(models.Model):
    """Replicas and bytes a wedding holds on one provider, as last computed with its WeddingHealth."""

    wedding = models.ForeignKey(Wedding, on_delete=models.CASCADE, related_name="usage")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="usage")
    verified_replicas = models.PositiveIntegerField(default=0)
    other_replicas = models.PositiveIntegerField(default=0)
    verified_bytes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wedding", "provider"], name="usage_unique_wedding_provider")]
        indexes = [models.Index(fields=["provider"])]

    def __str__(self) -> str:
        return f"{self.wedding_id} on {self.provider_id}: {self.verified_replicas}"


from .rehydration_models import Rehydration  # noqa: E402, F401 - registered with the app (a module of its own)
