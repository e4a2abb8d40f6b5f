from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The staff console and what spans every app: pages, the recurring jobs, ``runlocal``. The top layer."""

    name = "console"
    default_auto_field = "django.db.models.BigAutoField"
