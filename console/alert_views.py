"""The alerts page: what is wrong now, since when, how often it was sent; and what was resolved lately."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from protection.alert_queries import alerts_page
from wedbackup.web import page


@page("protection.view_alert")
def alert_list(request: HttpRequest) -> HttpResponse:
    return render(request, "protection/alerts.html", alerts_page())
