"""The schedules page: what runs by itself, how often, when next; admins change intervals, operators run now."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from protection.models import Schedule
from protection.schedules import schedule_run_now, schedule_update, schedules_list
from wedbackup.web import action, page


@page("protection.view_schedule")
def schedule_list(request: HttpRequest) -> HttpResponse:
    return render(request, "protection/schedules.html", {
        "schedules": schedules_list(),
        "can_change": request.user.has_perm("protection.change_schedule"),
        "can_run": request.user.has_perm("protection.run_schedule"),
    })


@action("protection.change_schedule")
def schedule_change(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    try:
        minutes = int(request.POST.get("interval_minutes", ""))
        schedule_update(schedule=schedule, interval_minutes=minutes, enabled=request.POST.get("enabled") == "on",
                        by=request.user)
    except ValueError:
        messages.error(request, "The interval must be a whole number of minutes, at least 1.")
    else:
        messages.success(request, f"{schedule}: every {minutes} min, next run {schedule.next_run_at:%Y-%m-%d %H:%M}.")
    return redirect("protection:schedules")


@action("protection.run_schedule")
def schedule_run(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = schedule_run_now(schedule=get_object_or_404(Schedule, pk=pk), by=request.user)
    messages.success(request, f"{schedule} starts within a minute.")
    return redirect("protection:schedules")
