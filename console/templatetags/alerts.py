"""`open_alerts`: how many alerts are open, for the nav (the page's own figure when it has one)."""

from django import template

from protection.alert_queries import alerts_open_count

register = template.Library()


@register.simple_tag(takes_context=True)
def open_alerts(context) -> int:
    if "alerts_open" in context:  # the overview and the alerts page count them already: one query, not two
        return context["alerts_open"]
    return alerts_open_count()
