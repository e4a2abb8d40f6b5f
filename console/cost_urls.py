from django.urls import path

from . import cost_views as views

app_name = "costs"

urlpatterns = [
    path("", views.costs, name="index"),
    path("optimizations/<int:pk>/apply/", views.optimization_apply, name="apply"),
    path("optimizations/apply-all/", views.optimizations_apply_all, name="apply_all"),
]
