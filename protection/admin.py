from django.contrib import admin

from .models import Alert, Drill, Schedule, ScrubRun
from .schedules import schedule_update


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["task", "plan", "interval_minutes", "enabled", "next_run_at", "last_run_at"]
    list_editable = ["interval_minutes", "enabled"]
    readonly_fields = ["task", "plan", "next_run_at", "last_run_at", "last_result"]

    def has_add_permission(self, request) -> bool:  # one row per task and plan, made by the migration
        return False

    def save_model(self, request, obj, form, change) -> None:
        """Through the console's function: the next run is recomputed and the change audited."""
        schedule_update(schedule=obj, interval_minutes=obj.interval_minutes, enabled=obj.enabled, by=request.user)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["subject", "kind", "opened_at", "last_sent_at", "sent_count", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Drill)
class DrillAdmin(admin.ModelAdmin):
    list_display = ["provider", "started_at", "ok", "files", "bytes", "seconds"]
    list_filter = ["ok", "provider"]
    readonly_fields = [f.name for f in Drill._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ScrubRun)
class ScrubRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "finished_at", "replicas_checked", "bytes_read", "mismatches", "repairs_started"]
    readonly_fields = [f.name for f in ScrubRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
