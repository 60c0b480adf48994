from django.urls import path

from hooks import calendar_views, views

app_name = "hooks"

urlpatterns = [
    path("webhooks/", views.subscription_list, name="subscription_list"),
    path("webhooks/new", views.subscription_new, name="subscription_new"),
    path("webhooks/<int:pk>/", views.subscription_detail, name="subscription_detail"),
    path("webhooks/<int:pk>/enable", views.subscription_enable, name="subscription_enable"),
    path("webhooks/<int:pk>/disable", views.subscription_disable, name="subscription_disable"),
    path("webhooks/<int:pk>/delete", views.subscription_delete, name="subscription_delete"),
    path("webhooks/<int:pk>/test", views.subscription_test, name="subscription_test"),
    path(
        "webhooks/<int:pk>/deliveries/<int:delivery_pk>/resend",
        views.delivery_resend,
        name="delivery_resend",
    ),
    path("calendar/new", calendar_views.calendar_feed_new, name="calendar_feed_new"),
    path("calendar/address", calendar_views.calendar_feed_created, name="calendar_feed_created"),
    path("calendar/revoke", calendar_views.calendar_feed_revoke, name="calendar_feed_revoke"),
    path("calendar/<str:token>.ics", calendar_views.calendar_feed, name="calendar_feed"),
]
