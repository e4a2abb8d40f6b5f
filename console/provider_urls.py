from django.urls import path

from . import provider_views as views

app_name = "providers"

urlpatterns = [
    path("", views.provider_list, name="list"),
    path("<int:pk>/", views.provider_detail, name="detail"),
    path("<int:pk>/<slug:action>/", views.provider_action, name="action"),
]
