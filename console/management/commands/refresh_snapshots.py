from django.core.management.base import BaseCommand

from backups.management.commands._output import emit
from console.tasks import snapshots_refresh


class Command(BaseCommand):
    help = ("Recompute the console's stored figures now (every wedding's protection and usage, the cost "
            "snapshot). The recurring jobs run on rq's cron scheduler: manage.py rqcron console.cron")

    def add_arguments(self, parser):
        parser.add_argument("--no-costs", action="store_true", help="Skip the cost model (it takes longest).")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        result = snapshots_refresh(costs=not o["no_costs"])
        lines = [f"{result['weddings']} weddings refreshed in {result['weddings_seconds']} s"]
        if "cost_snapshot" in result:
            lines.append(f"cost snapshot #{result['cost_snapshot']} in {result['cost_seconds']} s")
        lines.append(f"{result['health_checks_pruned']} old health checks dropped")
        emit(self, result, as_json=o["json"], lines=lines)
