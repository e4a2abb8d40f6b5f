from django.urls import path

from . import metrics_views

urlpatterns = [path("", metrics_views.metrics, name="metrics")]
