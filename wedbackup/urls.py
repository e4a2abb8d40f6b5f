from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import health

urlpatterns = [
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", include("console.metrics_urls")),
    path("providers/", include("console.provider_urls")),
    path("costs/", include("console.cost_urls")),
    path("protection/", include("console.protection_urls")),
    path("search/", include("console.search_urls")),
    path("", include("console.wedding_urls")),
]
