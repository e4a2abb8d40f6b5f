"""The search box's results page: weddings by couple, city or date, files by name, across the fleet."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from backups.search import search_results
from wedbackup.web import page


@page("backups.view_wedding")
def search(request: HttpRequest) -> HttpResponse:
    results = search_results(query=request.GET.get("q", ""), wedding_page=request.GET.get("wpage", 1),
                             file_page=request.GET.get("fpage", 1))
    return render(request, "search/results.html", results)
