"""The admin role may erase a wedding (the permission came after the groups)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    app_config = apps.get_app_config("backups")
    app_config.models_module = True  # permissions are otherwise only made after every migration
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="admin")
    group.permissions.add(Permission.objects.get(content_type__app_label="backups", codename="erase_wedding"))


class Migration(migrations.Migration):
    dependencies = [("console", "0001_groups"), ("backups", "0008_erase_permission")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
