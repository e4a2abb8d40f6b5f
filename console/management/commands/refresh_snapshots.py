from django.core.management.base import BaseCommand
from wedbackup.periodic import schedule_all, snapshots_refresh

from ._output import emit


class Command(BaseCommand):
    help = ("Recompute the console's stored figures now (every wedding's protection and usage, the cost "
            "snapshot); --schedule instead makes sure the recurring health and snapshot jobs are queued.")

    def add_arguments(self, parser):
        parser.add_argument("--schedule", action="store_true", help="Queue the recurring jobs (idempotent).")
        parser.add_argument("--no-costs", action="store_true", help="Skip the cost model (it takes longest).")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        if o["schedule"]:
            jobs = schedule_all()
            emit(self, jobs, as_json=o["json"], lines=[f"{name}: job {job_id}" for name, job_id in jobs.items()])
            return
        result = snapshots_refresh(costs=not o["no_costs"])
        lines = [f"{result['weddings']} weddings refreshed in {result['weddings_seconds']} s"]
        if "cost_snapshot" in result:
            lines.append(f"cost snapshot #{result['cost_snapshot']} in {result['cost_seconds']} s")
        lines.append(f"{result['health_checks_pruned']} old health checks dropped")
        emit(self, result, as_json=o["json"], lines=lines)
