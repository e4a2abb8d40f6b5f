"""The three roles as groups: viewer (sees everything), operator (runs the service), admin (configures it).
Permissions are named in each app's models; a person gets a role by joining a group in the Django admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWER = [
    "backups.view_wedding", "backups.view_asset", "backups.view_replica", "backups.view_backupjob",
    "backups.view_backuppolicy", "providers.view_provider", "providers.view_failoverevent",
    "providers.view_providerhealthcheck", "costs.view_optimization",
]
OPERATOR = VIEWER + [
    "backups.import_wedding", "backups.backup_wedding", "backups.restore_wedding", "providers.can_failover",
    "costs.apply_optimization",
]
ADMIN = OPERATOR + [
    "backups.view_auditevent", "backups.add_wedding", "backups.change_wedding", "backups.change_backuppolicy",
    "providers.add_provider", "providers.change_provider", "costs.view_catalogversion",
]
GROUPS = {"viewer": VIEWER, "operator": OPERATOR, "admin": ADMIN}


def groups_create(apps, schema_editor):
    for app_config in apps.get_app_configs():  # permissions are otherwise only made after every migration
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def groups_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("backups", "0006_permissions"),
        ("costs", "0003_permissions"),
        ("providers", "0001_initial"),
    ]
    operations = [migrations.RunPython(groups_create, groups_delete)]
