"""The console's shared plumbing: staff-only and permission decorators, and plotly figures as JSON."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST


def staff_required(view: Callable) -> Callable:
    """Anonymous users go to the login page; signed-in users who are not staff get 403."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_active or not request.user.is_staff:
            raise PermissionDenied("Staff only.")
        return view(request, *args, **kwargs)

    return wrapper


def staff_post(view: Callable) -> Callable:
    """A staff-only action: POST only (405 otherwise); CSRF is checked by the middleware."""
    return require_POST(staff_required(view))


def permission(perm: str) -> Callable[[Callable], Callable]:
    """Staff with the named permission ("app.codename") only: others get 403 saying which one they lack."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perm(perm):
                raise PermissionDenied(f"You need the permission {perm!r}.")
            return view(request, *args, **kwargs)

        return staff_required(wrapper)

    return decorate


def page(perm: str) -> Callable[[Callable], Callable]:
    """A console page: staff with ``perm`` (a view permission)."""
    return permission(perm)


def action(perm: str) -> Callable[[Callable], Callable]:
    """A console action: POST only, staff with ``perm``; CSRF is checked by the middleware."""
    return lambda view: require_POST(permission(perm)(view))


def figure(data: list, **layout) -> dict:
    """A plotly figure as plain JSON-ready data (traces are graph_objects, validated by plotly)."""
    import plotly.graph_objects as go

    base = {"template": "none", "margin": {"l": 60, "r": 20, "t": 40, "b": 60}, "height": 320,
            "legend": {"orientation": "h", "y": -0.2}}
    base.update(layout)
    return json.loads(go.Figure(data=data, layout=base).to_json())
