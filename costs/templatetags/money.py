"""`money`: two decimals, or four when the amount is under one unit, so small weddings do not read 0.00; an
amount too small even for four decimals reads "< 0.0001", never "0.0000" (which would say it is free)."""

from decimal import Decimal, InvalidOperation

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()
SMALLEST = Decimal("0.0001")


@register.filter
def money(value) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return ""
    if 0 < abs(amount) < SMALLEST / 2:  # would round to 0.0000
        return f"< {SMALLEST}" if amount > 0 else f"> -{SMALLEST}"
    return floatformat(amount, 4 if 0 < abs(amount) < 1 else 2)
