from django.core.management.base import BaseCommand

from backups.management.commands._output import EXIT_PARTIAL, emit, exit_codes_epilog, fail
from costs.tiering_rules import (
    tiering_classes_sync_all,
    tiering_plan_compute,
    tiering_rules_install,
    tiering_rules_read,
)


def _rule_text(rule: dict) -> str:
    steps = ", ".join(f"{t['storage_class']} after {t['days']} days" for t in rule["transitions"])
    size = f", objects of {rule['min_size']} bytes and up" if rule["min_size"] else ""
    return f"{rule['id']} on {rule['prefix']!r}{size}: {steps}"


class Command(BaseCommand):
    help = ("Tiering with the providers' own bucket lifecycle rules: show the rules the optimiser would install "
            "(and the requests our workers would make with and without them) and the rules in place; --install "
            "puts them on every provider that supports them, --remove takes ours off (others' rules are kept).")

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--install", action="store_true", help="Install the planned rules (audited)")
        group.add_argument("--remove", action="store_true", help="Remove our rules everywhere (audited)")
        group.add_argument("--sync", action="store_true",
                           help="Record the class the providers' rules moved each copy to (a LIST per 1,000 objects)")
        parser.add_argument("--json", action="store_true", help="Print JSON")
        exit_codes_epilog(parser)

    def handle(self, *args, **o):
        plan, report = tiering_plan_compute()
        lines = [f"planned on {r['provider']}: {_rule_text(x)}; {r['objects']} objects transitioned by the provider "
                 f"(${r['transition_cost']:.2f} of its transition requests), saving ${r['monthly_saving']:.2f}/month"
                 for r in report["rules"] for x in r["rules"]]
        data = {"plan": report}
        if o["install"] or o["remove"]:
            data["installed"] = rows = tiering_rules_install(plan=plan, remove=o["remove"])
            lines += [f"{row['provider']}: " + (f"failed: {row['error']}" if row.get("error") else
                                                 "changed" if row["changed"] else "already in place") for row in rows]
        if o["sync"]:
            data["synced"] = synced = tiering_classes_sync_all()
            lines += [f"{row['provider']}: {row['objects']} objects listed, {row['changed']} copies in a new class"
                      for row in synced]
        read = tiering_rules_read()
        data["in_place"] = [{"provider": i.provider.name, "ours": [r.id for r in i.rules], "others": i.others,
                             "error": i.error} for i in read]
        lines += [f"in place on {i.provider.name}: " + (f"unreadable: {i.error}" if i.error else
                  f"{', '.join(r.id for r in i.rules) or 'none of ours'} ({i.others} other rule(s) kept)")
                  for i in read]
        summary = (f"{len(plan.rules)} provider(s) with rules; our workers' requests for the fleet: "
                   f"{report['per_object_requests']:,} per object, {report['with_rules_requests']:,} with rules "
                   f"(the providers make {report['provider_transitions']:,} transitions themselves)")
        emit(self, data, as_json=o["json"], lines=lines, summary=summary)
        if any(row.get("error") for row in data.get("installed", [])):
            raise fail("some providers' rules could not be written", code=EXIT_PARTIAL)
