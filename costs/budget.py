"""The monthly budget: a cost snapshot above WEDBACKUP_COST_BUDGET_MONTHLY opens an alert, one at or below it (or no
budget) resolves it. Checked after every snapshot, so the alert repeats and resolves at the snapshots' pace."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings

from protection.alerts import alert_raise, alert_resolve
from protection.models import Alert

from .models import CostSnapshot

log = logging.getLogger(__name__)
KEY = "cost_budget"


def cost_budget() -> Decimal:
    return Decimal(str(getattr(settings, "WEDBACKUP_COST_BUDGET_MONTHLY", 0) or 0))


def cost_budget_check(*, snapshot: CostSnapshot) -> Alert | None:
    """Raise or resolve the budget alert from this snapshot; returns the open alert, if any. Never raises: the
    snapshot is stored already, and the next one checks again."""
    try:
        budget = cost_budget()
        if budget <= 0 or snapshot.current_monthly <= budget:
            alert_resolve(key=KEY)
            return None
        over = snapshot.current_monthly - budget
        return alert_raise(
            key=KEY, kind=Alert.Kind.COST_BUDGET,
            subject=f"Monthly cost {snapshot.current_monthly:.2f} {snapshot.currency} is above the budget of "
                    f"{budget:.2f} {snapshot.currency}",
            detail=f"{over:.2f} {snapshot.currency} over, as of {snapshot.taken_at:%Y-%m-%d %H:%M %Z}. Optimised, it "
                   f"would be {snapshot.optimised_monthly:.2f} ({snapshot.proposals} proposals on the Costs page).")
    except Exception:
        log.exception("checking the cost budget failed")
        return None
