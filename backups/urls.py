from django.urls import path

from . import jobs_views, views

app_name = "backups"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("refresh/", views.snapshots_refresh, name="snapshots_refresh"),
    path("weddings/", views.wedding_list, name="weddings"),
    path("weddings/import/", views.wedding_import, name="wedding_import"),
    path("weddings/<slug:slug>/", views.wedding_detail, name="wedding"),
    path("weddings/<slug:slug>/backup/", views.wedding_backup, name="wedding_backup"),
    path("weddings/<slug:slug>/verify/", views.wedding_verify, name="wedding_verify"),
    path("weddings/<slug:slug>/restore/", views.wedding_restore, name="wedding_restore"),
    path("weddings/<slug:slug>/restore-to/", views.wedding_restore_to, name="wedding_restore_to"),
    path("jobs/", jobs_views.job_list, name="jobs"),
    path("jobs/<int:pk>.json", jobs_views.job_json, name="job_json"),
    path("jobs/<int:pk>/retry/", jobs_views.job_retry, name="job_retry"),
]
