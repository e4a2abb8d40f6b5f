"""The protection page: scrub progress and runs, the last restore drill per provider."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from protection.readback_queries import protection_page
from protection.schedules import schedules_list
from wedbackup.web import page


@page("protection.view_drill")
def protection_index(request: HttpRequest) -> HttpResponse:
    return render(request, "protection/index.html", {**protection_page(), "schedules": schedules_list()})
