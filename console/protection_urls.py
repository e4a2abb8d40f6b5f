"""Continuous protection pages: scrubbing, restore drills, schedules and alerts."""

from django.urls import path  # noqa: F401  (each page adds its line below)

app_name = "protection"
urlpatterns: list = []
