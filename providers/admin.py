from django.contrib import admin

from .crypto import mask
from .forms import ProviderForm
from .models import FailoverEvent, Provider, ProviderHealthCheck
from .signals import provider_changed


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ["name", "kind", "region", "residency_zone", "status", "enabled", "default_storage_class",
                    "capacity_bytes"]
    list_filter = ["kind", "status", "enabled", "residency_zone"]
    search_fields = ["name", "bucket", "region", "notes"]
    readonly_fields = ["residency_zone", "stored_credentials", "status_changed_at", "created", "updated"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        fields = [f for f in form.changed_data if f not in ("check_connection", "new_credentials")]
        if form.cleaned_data.get("new_credentials") is not None:
            fields.append("credentials")
        provider_changed.send(sender=Provider, provider=obj, by=request.user, created=not change, fields=fields)

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
