from django.contrib import admin

from .models import AccessRecord, CatalogVersion, Optimization


@admin.register(Optimization)
class OptimizationAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "wedding", "status", "current_monthly", "new_monthly", "one_off_cost",
                    "payback_months", "created", "applied_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["wedding"]
    raw_id_fields = ["wedding", "job"]


@admin.register(CatalogVersion)
class CatalogVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "effective_date", "loaded_at"]
    readonly_fields = ["data"]


@admin.register(AccessRecord)
class AccessRecordAdmin(admin.ModelAdmin):
    list_display = ["wedding", "kind", "asset_kind", "bytes", "at"]
    list_filter = ["kind"]
    raw_id_fields = ["wedding"]
