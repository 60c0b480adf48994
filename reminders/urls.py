from django.urls import path

from reminders import views

urlpatterns = [
    path("", views.reminder_list, name="reminder_list"),
    path("panel/", views.reminder_panel, name="reminder_panel"),
    path("badge/", views.reminder_badge, name="reminder_badge"),
    path("<int:pk>/done/", views.reminder_done, name="reminder_done"),
    path("<int:pk>/snooze/", views.reminder_snooze, name="reminder_snooze"),
]
