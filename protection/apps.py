from django.apps import AppConfig


class ProtectionConfig(AppConfig):
    """Continuous protection: watched sources, schedules, scrubbing, restore drills and alerts."""

    name = "protection"
    default_auto_field = "django.db.models.BigAutoField"
