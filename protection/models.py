"""What continuous protection keeps: schedules (data, run by one dispatcher on rq's cron), alerts, restore
drills and scrub runs. The per-file state lives on the backups models (Asset.seen_complete_at / protected_at,
Replica.scrubbed_at)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from backups.models import Plan
from providers.models import Provider


class Schedule(models.Model):
    class Task(models.TextChoices):
        SOURCE_SCAN = "source_scan", "Scan watched source folders"
        SCRUB = "scrub", "Scrub (read back a slice of every copy)"
        DRILL = "drill", "Restore drill per provider"
        ALERT_CHECK = "alert_check", "Check alert conditions"

    task = models.CharField(max_length=16, choices=Task.choices)
    plan = models.CharField(max_length=12, blank=True, choices=Plan.choices,
                            help_text="Only weddings on this plan (source scans); blank: all.")
    interval_minutes = models.PositiveIntegerField()
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(default=timezone.now)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["task", "plan"]
        constraints = [
            models.UniqueConstraint(fields=["task", "plan"], name="schedule_one_per_task_and_plan"),
            models.CheckConstraint(condition=Q(interval_minutes__gte=1), name="schedule_interval_positive"),
        ]
        permissions = [("run_schedule", "Can run a scheduled task now")]

    def __str__(self) -> str:
        return f"{self.get_task_display()}" + (f" ({self.plan})" if self.plan else "")


class Alert(models.Model):
    class Kind(models.TextChoices):
        BELOW_POLICY = "below_policy", "Wedding below policy"
        JOB_FAILED = "job_failed", "Job failed"
        JOB_STUCK = "job_stuck", "Job stuck"
        PROVIDER_DOWN = "provider_down", "Provider down"
        SCRUB_MISMATCH = "scrub_mismatch", "Scrub found damaged copies"
        DRILL_FAILED = "drill_failed", "Restore drill failed"
        SOURCE_VANISHED = "source_vanished", "Watched folder vanished"
        SOURCE_IDLE = "source_idle", "Watched folder stopped changing on a wedding day"
        COST_BUDGET = "cost_budget", "Monthly cost above budget"

    key = models.CharField(max_length=200, help_text="What the alert is about, e.g. provider_down:3.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(max_length=255)
    detail = models.TextField(blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    sent_count = models.PositiveIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_sent = models.BooleanField(default=False)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=Q(resolved_at__isnull=True),
                                    name="alert_one_open_per_key"),
        ]
        indexes = [models.Index(fields=["resolved_at", "kind"])]

    def __str__(self) -> str:
        return self.subject


class Drill(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="drills")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True, help_text="Empty while running.")
    files = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    failures = models.JSONField(default=list, blank=True, help_text="[{path, reason}] for files that failed.")
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["provider", "-started_at"])]

    def __str__(self) -> str:
        return f"drill {self.provider} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds if self.seconds else 0.0


class ScrubRun(models.Model):
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    replicas_checked = models.PositiveIntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0)
    metadata_only = models.PositiveIntegerField(default=0, help_text="Archived copies checked by metadata only.")
    mismatches = models.PositiveIntegerField(default=0)
    repairs_started = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"scrub {self.started_at:%Y-%m-%d %H:%M}"
