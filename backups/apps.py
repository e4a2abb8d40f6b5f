from django.apps import AppConfig

from providers import signals

from .signals import copies_damaged


class BackupsConfig(AppConfig):
    name = "backups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these modules import models, which Django loads after this file.
        from .audit import provider_change_record
        from .failover import failover_reconcile, on_breaker_closed, on_breaker_opened
        from .snapshots import fleet_health_soon
        from .tasks import repair_on_damage

        signals.breaker_opened.connect(on_breaker_opened, dispatch_uid="backups.failover.begin")
        signals.breaker_closed.connect(on_breaker_closed, dispatch_uid="backups.failover.end")
        signals.health_reconciled.connect(failover_reconcile, dispatch_uid="backups.failover.reconcile")
        signals.provider_status_changed.connect(fleet_health_soon, dispatch_uid="backups.snapshots.fleet_soon")
        signals.provider_changed.connect(provider_change_record, dispatch_uid="backups.audit.provider_change")
        copies_damaged.connect(repair_on_damage, dispatch_uid="backups.tasks.repair_on_damage")
