"""Continuous protection pages: scrubbing, restore drills, schedules and alerts."""

from django.urls import path

from . import alert_views, protection_views, schedule_views

app_name = "protection"
urlpatterns: list = [
    path("", protection_views.protection_index, name="index"),
    path("schedules/", schedule_views.schedule_list, name="schedules"),
    path("schedules/<int:pk>/", schedule_views.schedule_change, name="schedule_change"),
    path("schedules/<int:pk>/run/", schedule_views.schedule_run, name="schedule_run"),
    path("alerts/", alert_views.alert_list, name="alerts"),
]
