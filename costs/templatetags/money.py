"""`money`: two decimals, or four when the amount is under one unit, so small weddings do not read 0.00."""

from decimal import Decimal, InvalidOperation

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def money(value) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return ""
    return floatformat(amount, 4 if 0 < abs(amount) < 1 else 2)
