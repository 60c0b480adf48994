from django.urls import path

from audits import views

app_name = "audits"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("report/", views.report, name="report"),
    path("deals/<int:deal_pk>/wrap-up/", views.wrap_up, name="wrap_up"),
    path("deals/<int:deal_pk>/dispute/", views.dispute, name="dispute"),
    path("<int:pk>/call/", views.call, name="call"),
    path("<int:pk>/claim/", views.claim, name="claim"),
    path("<int:pk>/release/", views.release, name="release"),
    path("<int:pk>/attempts/", views.attempt_new, name="attempt_new"),
]
