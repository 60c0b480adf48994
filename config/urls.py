from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("accounts/", include("pipeline.account_urls")),
    path("admin/", admin.site.urls),
    path("audits/", include("audits.urls")),
    path("reminders/", include("pipeline.reminders.urls")),
    path("billing/", include("billing.urls")),
    path("", include("pipeline.urls")),
]
