"""The roles for continuous protection: viewers see alerts, drills, scrubs and schedules; operators run a
schedule now; admins edit schedules."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWER = ["protection.view_alert", "protection.view_drill", "protection.view_scrubrun", "protection.view_schedule"]
OPERATOR = VIEWER + ["protection.run_schedule"]
ADMIN = OPERATOR + ["protection.change_schedule"]
ADDED = {"viewer": VIEWER, "operator": OPERATOR, "admin": ADMIN}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("protection")
    app_config.models_module = True  # permissions are otherwise only made after every migration
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ADDED.items():
        group, _ = Group.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


class Migration(migrations.Migration):
    dependencies = [("console", "0002_admin_erase"), ("protection", "0002_default_schedules")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
