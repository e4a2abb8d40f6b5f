from django.urls import path

from . import views, wedding_views

app_name = "backups"  # the URL names predate the console app: {% url 'backups:wedding' %} and so on

urlpatterns = [
    path("", views.overview, name="overview"),
    path("refresh/", views.snapshots_refresh, name="snapshots_refresh"),
    path("weddings/", wedding_views.wedding_list, name="weddings"),
    path("weddings/import/", wedding_views.wedding_import, name="wedding_import"),
    path("weddings/<slug:slug>/", wedding_views.wedding_detail, name="wedding"),
    path("weddings/<slug:slug>/timeline/", wedding_views.wedding_timeline_page, name="wedding_timeline"),
    path("weddings/<slug:slug>/backup/", wedding_views.wedding_backup, name="wedding_backup"),
    path("weddings/<slug:slug>/verify/", wedding_views.wedding_verify, name="wedding_verify"),
    path("weddings/<slug:slug>/restore/", wedding_views.wedding_restore, name="wedding_restore"),
    path("weddings/<slug:slug>/restore-to/", wedding_views.wedding_restore_to, name="wedding_restore_to"),
    path("weddings/<slug:slug>/files/zip/", wedding_views.assets_download_selection, name="assets_zip"),
    path("weddings/<slug:slug>/files/<int:pk>/", wedding_views.asset_download, name="asset_download"),
    path("weddings/<slug:slug>/files/<int:pk>/thumbnail.jpg", wedding_views.asset_thumbnail,
         name="asset_thumbnail"),
    path("weddings/<slug:slug>/files/<int:pk>/rehydrate/", wedding_views.asset_rehydrate_request,
         name="asset_rehydrate"),
    path("audit/", views.audit_list, name="audit"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:pk>.json", views.job_json, name="job_json"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job_retry"),
    path("jobs/<int:pk>/download/", views.job_download, name="job_download"),
]
