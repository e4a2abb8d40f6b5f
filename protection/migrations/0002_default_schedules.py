"""The schedules a new installation starts with (editable in the admin and the console)."""

from django.db import migrations

DEFAULTS = [
    ("source_scan", "premium", 60),
    ("source_scan", "standard", 24 * 60),
    ("source_scan", "cost-saver", 24 * 60),
    ("scrub", "", 24 * 60),
    ("drill", "", 7 * 24 * 60),
    ("alert_check", "", 5),
]


def schedules_create(apps, schema_editor):
    Schedule = apps.get_model("protection", "Schedule")
    for task, plan, minutes in DEFAULTS:
        Schedule.objects.get_or_create(task=task, plan=plan, defaults={"interval_minutes": minutes})


class Migration(migrations.Migration):
    dependencies = [("protection", "0001_initial")]
    operations = [migrations.RunPython(schedules_create, migrations.RunPython.noop)]
