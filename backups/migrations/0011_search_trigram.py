"""Trigram indexes for the console's search (backups.search): pg_trgm and GIN indexes on PostgreSQL only.

The indexes are created here and not declared in the models' Meta: a GIN index cannot exist on SQLite (`make run`),
and SQLite rebuilds a table from the model state whenever a later migration alters it.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = {
    "wedding": [GinIndex(fields=["couple"], opclasses=["gin_trgm_ops"], name="wedding_couple_trgm"),
                GinIndex(fields=["city"], opclasses=["gin_trgm_ops"], name="wedding_city_trgm")],
    "asset": [GinIndex(fields=["relative_path"], opclasses=["gin_trgm_ops"], name="asset_path_trgm")],
}


def indexes_add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model, indexes in INDEXES.items():
        for index in indexes:
            schema_editor.add_index(apps.get_model("backups", model), index)


def indexes_remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model, indexes in INDEXES.items():
        for index in indexes:
            schema_editor.remove_index(apps.get_model("backups", model), index)


class Migration(migrations.Migration):
    dependencies = [("backups", "0010_wedding_rpo")]

    operations = [
        TrigramExtension(),  # a no-op on SQLite
        migrations.RunPython(indexes_add, indexes_remove),
    ]
