from django.apps import AppConfig

from backups.signals import wedding_read


class CostsConfig(AppConfig):
    name = "costs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these modules import models, which Django loads after this file.
        from backups.placement import price_catalog_register

        from .costing import access_on_read
        from .versions import current_catalog

        price_catalog_register(current_catalog)  # routing ranks providers by the catalog in force
        wedding_read.connect(access_on_read, dispatch_uid="costs.costing.access_on_read")
