import json

from django.core.management.base import BaseCommand, CommandError

from backups.models import Wedding
from costs.proposals import optimizations_refresh
from costs.tasks import optimization_apply


class Command(BaseCommand):
    help = "Propose cost optimisations (checked against the backup policy); --apply enqueues them on 'bulk'."

    def add_arguments(self, parser):
        parser.add_argument("--wedding", type=int, help="Only this wedding (id)")
        parser.add_argument("--apply", action="store_true", help="Enqueue every appliable proposal")
        parser.add_argument("--json", action="store_true", help="Print JSON")
        parser.add_argument("--no-measure", action="store_true", help="Skip sampling files for compressibility")

    def handle(self, *args, wedding=None, apply=False, json=False, no_measure=False, **options):
        target = None
        if wedding is not None:
            target = Wedding.objects.filter(pk=wedding).first()
            if target is None:
                raise CommandError(f"no wedding with id {wedding}")
        rows = optimizations_refresh(wedding=target, measure=not no_measure)
        jobs = {o.pk: optimization_apply(optimization=o) for o in rows} if apply else {}
        out = [{"id": o.pk, "wedding": o.wedding_id, "kind": o.kind, "summary": o.summary,
                "current_monthly": str(o.current_monthly), "new_monthly": str(o.new_monthly),
                "one_off_cost": str(o.one_off_cost), "payback_months": o.payback_months,
                "job": getattr(jobs.get(o.pk), "pk", None)} for o in rows]
        if json:
            self.stdout.write(_dumps({"proposals": out}))
            return
        for row in out:
            job = f"  job #{row['job']}" if row["job"] else ""
            self.stdout.write(f"#{row['id']} wedding {row['wedding']} {row['kind']}: {row['summary']} "
                              f"${row['current_monthly']} -> ${row['new_monthly']}/month, one-off "
                              f"${row['one_off_cost']}{job}")
        self.stdout.write(f"{len(out)} proposal(s)")


def _dumps(value) -> str:
    return json.dumps(value, indent=2)
