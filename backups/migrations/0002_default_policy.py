from django.db import migrations


def create_default_policy(apps, schema_editor):
    BackupPolicy = apps.get_model("backups", "BackupPolicy")
    if not BackupPolicy.objects.filter(is_default=True).exists():
        BackupPolicy.objects.create(
            name="default", is_default=True, min_copies=3, min_distinct_providers=2,
            plan_overrides={"premium": {"min_copies": 3, "min_distinct_providers": 3}},
        )


class Migration(migrations.Migration):
    dependencies = [("backups", "0001_initial")]
    operations = [migrations.RunPython(create_default_policy, migrations.RunPython.noop)]
