from django.contrib import admin

from .audit import audit_record
from .ingest import wedding_rescan
from .models import Asset, AuditEvent, BackupJob, BackupPolicy, Replica, Wedding
from .sharing import wedding_share
from .tasks import backup_start


class AssetInline(admin.TabularInline):
    model = Asset
    fields = ["relative_path", "kind", "size", "sha256", "missing_since"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    max_num = 0


@admin.register(Wedding)
class WeddingAdmin(admin.ModelAdmin):
    list_display = ["couple", "date", "country", "city", "residency_zone", "plan", "requires_ml_analysis"]
    list_filter = ["plan", "residency_zone", "requires_ml_analysis", "country"]
    search_fields = ["couple", "slug", "city"]
    date_hierarchy = "date"
    prepopulated_fields = {"slug": ["couple"]}
    inlines = [AssetInline]
    actions = ["rescan", "back_up_now"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "sharing_allowed" in form.changed_data and not obj.sharing_allowed:
            wedding_share(wedding=obj)  # withdrawn: the link is revoked on Dropbox now, not at the next backup

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm("backups.import_wedding")

    def has_backup_permission(self, request) -> bool:
        return request.user.has_perm("backups.backup_wedding")

    @admin.action(description="Re-scan the source folder (new and changed files; removed ones reported)",
                  permissions=["import"])
    def rescan(self, request, queryset):
        for wedding in queryset.exclude(source_path=""):
            report = wedding_rescan(wedding=wedding)
            self.message_user(request, f"{wedding}: {len(report.added)} added, {len(report.changed)} changed, "
                                       f"{len(report.removed)} removed, {len(report.problems)} problem(s)")

    @admin.action(description="Back up now", permissions=["backup"])
    def back_up_now(self, request, queryset):
        for wedding in queryset:
            job = backup_start(wedding=wedding, requested_by=request.user)
            self.message_user(request, f"{wedding}: backup job #{job.pk} queued")


class ReplicaInline(admin.TabularInline):
    model = Replica
    fields = ["provider", "status", "storage_class", "region", "object_key", "reason", "verified_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["relative_path", "wedding", "kind", "size", "captured_at", "missing_since"]
    list_filter = ["kind"]
    search_fields = ["relative_path", "sha256", "wedding__couple"]
    list_select_related = ["wedding"]
    raw_id_fields = ["wedding"]
    inlines = [ReplicaInline]


@admin.register(BackupPolicy)
class BackupPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default", "min_copies", "min_distinct_providers", "enforce_residency",
                    "cross_region_copy", "max_restore_hours", "retention_days"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(by=request.user, action="policy.change" if change else "policy.create",
                     target=f"policy:{obj.name}", details={f: str(form.cleaned_data.get(f)) for f in form.changed_data})


@admin.register(BackupJob)
class BackupJobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "wedding", "status", "files_done", "files_failed", "files_planned",
                    "created", "finished_at"]
    list_filter = ["kind", "status", "queue"]
    list_select_related = ["wedding"]
    readonly_fields = ["files_planned", "files_done", "files_failed", "bytes_planned", "bytes_done", "bytes_failed",
                       "rq_job_id", "started_at", "finished_at", "result", "error_summary"]
    raw_id_fields = ["wedding"]


@admin.register(Replica)
class ReplicaAdmin(admin.ModelAdmin):
    list_display = ["object_key", "provider", "status", "storage_class", "region", "size", "verified_at"]
    list_filter = ["status", "provider", "storage_class"]
    search_fields = ["object_key"]
    list_select_related = ["provider"]
    raw_id_fields = ["asset"]
    readonly_fields = ["checksums", "verified_at", "last_error"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_label", "action", "target"]
    list_filter = ["action"]
    search_fields = ["target", "actor_label"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
