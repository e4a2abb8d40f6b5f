"""`seconds`: a duration in seconds as people say it ("42 s", "3 min 5 s", "2 h 10 min", "3 d 4 h")."""

from django import template

register = template.Library()


@register.filter
def seconds(value) -> str:
    try:
        total = int(round(float(value)))
    except (TypeError, ValueError):
        return ""
    if total < 60:
        return f"{total} s"
    minutes, sec = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {sec} s" if sec else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def seconds_from_minutes(value) -> str:
    try:
        return seconds(int(value) * 60)
    except (TypeError, ValueError):
        return ""
