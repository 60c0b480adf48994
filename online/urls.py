from django.urls import path

from online import views, webhook

app_name = "online"

urlpatterns = [
    path("pay/<str:token>/<int:invoice_id>/", views.pay, name="pay"),
    path("pay/<str:token>/<int:invoice_id>/start/", views.pay_start, name="pay_start"),
    path("stripe/webhook/", webhook.stripe_webhook, name="stripe_webhook"),
]
