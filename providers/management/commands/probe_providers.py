import json

from django.core.management.base import BaseCommand

from providers.health import health_check_all


class Command(BaseCommand):
    help = ("Probe every enabled provider now (what the recurring health job does; that one runs on rq's cron "
            "scheduler: manage.py rqcron console.cron).")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        checks = health_check_all()
        rows = []
        for c in checks:
            c.provider.refresh_from_db(fields=["status"])
            rows.append({"provider": c.provider.name, "ok": c.ok, "latency_ms": c.latency_ms, "error": c.error,
                         "status": c.provider.status})
        if o["json"]:
            self.stdout.write(json.dumps({"checks": rows}, indent=2))
            return
        for r in rows:
            outcome = f"ok in {r['latency_ms']:.0f} ms" if r["ok"] else f"FAILED: {r['error']}"
            self.stdout.write(f"{r['provider']}: {outcome} ({r['status']})")
        if not rows:
            self.stdout.write("no enabled provider was due for a probe")
