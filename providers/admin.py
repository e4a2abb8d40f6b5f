from django.contrib import admin

from .crypto import mask
from .forms import ProviderForm
from .models import FailoverEvent, Provider, ProviderHealthCheck


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ["name", "kind", "region", "residency_zone", "status", "enabled", "default_storage_class",
                    "capacity_bytes"]
    list_filter = ["kind", "status", "enabled", "residency_zone"]
    search_fields = ["name", "bucket", "region", "notes"]
    readonly_fields = ["residency_zone", "stored_credentials", "status_changed_at", "created", "updated"]

    @admin.display(description="Stored credentials")
    def stored_credentials(self, obj: Provider) -> str:
        masked = mask(obj.credentials) if obj.pk else {}
        return ", ".join(f"{k}: {v}" for k, v in masked.items()) or "none"


@admin.register(ProviderHealthCheck)
class ProviderHealthCheckAdmin(admin.ModelAdmin):
    list_display = ["provider", "checked_at", "source", "ok", "latency_ms", "error"]
    list_filter = ["ok", "source", "provider"]
    date_hierarchy = "checked_at"
    list_select_related = ["provider"]


@admin.register(FailoverEvent)
class FailoverEventAdmin(admin.ModelAdmin):
    list_display = ["provider", "trigger", "started_at", "resolved_at", "affected_weddings", "affected_assets",
                    "estimated_seconds", "actual_seconds"]
    list_filter = ["trigger", "provider"]
    list_select_related = ["provider"]
    readonly_fields = ["redirected"]
