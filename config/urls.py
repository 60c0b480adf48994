from django.contrib import admin
from django.urls import include, path

from config.views import healthz

urlpatterns = [
    path("accounts/", include("pipeline.account_urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("audits/", include("audits.urls")),
    path("reminders/", include("reminders.urls")),
    path("billing/", include("billing.urls")),
    path("", include("hooks.urls")),
    path("", include("dashboards.urls")),
    path("", include("pipeline.urls")),
]
