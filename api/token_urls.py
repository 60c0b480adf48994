from django.urls import path

from api import views

urlpatterns = [
    path("new/", views.token_create, name="api_token_create"),
    path("created/", views.token_created, name="api_token_created"),
    path("<int:pk>/revoke/", views.token_revoke, name="api_token_revoke"),
]
