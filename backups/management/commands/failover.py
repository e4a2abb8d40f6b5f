import getpass
import json

from django.core.management.base import BaseCommand

from backups.failover import provider_mark_down, provider_mark_up
from providers.models import Provider

from ._output import EXIT_USAGE, exit_codes_epilog, fail


class Command(BaseCommand):
    help = "Mark a provider down (drain: no new work, queued work redirected) or back up. Writes an audit event."

    def add_arguments(self, parser):
        parser.add_argument("provider", help="Provider name")
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--down", action="store_true")
        action.add_argument("--up", action="store_true")
        parser.add_argument("--reason", default="")
        parser.add_argument("--json", action="store_true")
        exit_codes_epilog(parser)

    def handle(self, *args, **o):
        try:
            provider = Provider.objects.get(name=o["provider"])
        except Provider.DoesNotExist:
            raise fail(f"no provider named {o['provider']!r}", code=EXIT_USAGE) from None
        by = f"cli:{getpass.getuser()}"
        if o["down"]:
            event = provider_mark_down(provider=provider, by=by, reason=o["reason"])
        else:
            event = provider_mark_up(provider=provider, by=by)
        provider.refresh_from_db()
        data = {"provider": provider.name, "status": provider.status, "failover_event": None}
        if event is not None:
            data["failover_event"] = {
                "id": event.pk, "trigger": event.trigger, "reason": event.reason,
                "started_at": event.started_at.isoformat(),
                "resolved_at": event.resolved_at.isoformat() if event.resolved_at else None,
                "affected_weddings": event.affected_weddings, "affected_assets": event.affected_assets,
                "estimated_seconds": event.estimated_seconds, "actual_seconds": event.actual_seconds,
            }
        if o["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.stdout.write(f"{provider.name}: {provider.status}")
        if event is not None and o["down"]:
            self.stdout.write(f"failover event {event.pk}: {event.affected_weddings} wedding(s), "
                              f"{event.affected_assets} file(s) redirected; estimate {event.estimated_seconds:.0f}s")
        elif event is not None:
            self.stdout.write(f"failover event {event.pk} resolved after {event.actual_seconds:.0f}s; repair started")
