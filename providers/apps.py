from django.apps import AppConfig

from .signals import breaker_transitioned


class ProvidersConfig(AppConfig):
    name = "providers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .health import breaker_changed  # imports models, which Django loads after this module

        breaker_transitioned.connect(breaker_changed, dispatch_uid="providers.health.breaker_changed")
