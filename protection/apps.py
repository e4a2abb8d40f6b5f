from django.apps import AppConfig

from providers import signals


class ProtectionConfig(AppConfig):
    """Continuous protection: watched sources, schedules, scrubbing, restore drills and alerts."""

    name = "protection"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: checks imports models, which Django loads after this file.
        from .checks import provider_alert_receive

        # A provider's alert opens and resolves with its breaker at once; the alert_check sweep is the safety net.
        for signal, name in ((signals.breaker_opened, "opened"), (signals.breaker_closed, "closed"),
                             (signals.provider_status_changed, "status")):
            signal.connect(provider_alert_receive, dispatch_uid=f"protection.checks.provider_alert.{name}")
