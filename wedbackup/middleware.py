"""Paths only superusers may reach, whatever the views there check themselves (django-rq's views check only
``is_staff``: a staff login could otherwise empty the queues)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


class SuperuserOnlyPaths:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.prefixes = tuple(settings.WEDBACKUP_SUPERUSER_PATHS)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(self.prefixes):  # what URLs resolve by, whatever the prefix
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not (user.is_active and user.is_superuser):
                raise PermissionDenied("Superusers only.")
        return self.get_response(request)
