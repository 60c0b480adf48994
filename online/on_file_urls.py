from django.urls import path

from online import on_file_views as views

app_name = "on_file"

urlpatterns = [
    path("deals/<int:pk>/send-link/", views.card_link_send, name="card_link_send"),
    path("deals/<int:pk>/charge/", views.card_charge, name="card_charge"),
    path("team/", views.team_charging, name="team_charging"),
    path("c/<str:token>/", views.card_setup, name="card_setup"),
    path("c/<str:token>/done/", views.card_setup_done, name="card_setup_done"),
    path("authenticate/<str:token>/", views.authenticate, name="authenticate"),
    path("authenticate/<str:token>/done/", views.authenticate_done, name="authenticate_done"),
]
