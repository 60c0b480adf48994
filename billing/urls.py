from django.urls import path

from billing import refund_views, views, webhooks

app_name = "billing"

urlpatterns = [
    path("payments/", views.payment_list, name="payment_list"),
    path("payments/<int:pk>/status/", views.payment_status, name="payment_status"),
    path("payments/<int:pk>/refund/", refund_views.payment_refund, name="payment_refund"),
    path("invoices/", views.invoice_list, name="invoice_list"),
    path("commission/", views.commission, name="commission"),
    path("team/<int:pk>/rate/", views.commission_rate, name="commission_rate"),
    path("deals/<int:pk>/payments/new/", views.payment_new, name="payment_new"),
    path("deals/<int:pk>/methods/new/", views.method_new, name="method_new"),
    path("deals/<int:pk>/invoices/new/", views.invoice_new, name="invoice_new"),
    path("deals/<int:pk>/plan/new/", views.plan_new, name="plan_new"),
    path("deals/<int:pk>/waive-deposit/", views.deposit_waive, name="deposit_waive"),
    path("customers/<int:pk>/allow-invoicing/", views.invoicing_allow, name="invoicing_allow"),
    path("deals/ask-invoicing/", views.deal_invoicing_ask, name="deal_invoicing_ask"),
    path("deals/<int:pk>/ask-waiver/", views.deposit_waiver_ask, name="deposit_waiver_ask"),
    path("exception-requests/<int:pk>/decide/", views.exception_decide, name="exception_decide"),
    path("webhooks/payments/", webhooks.payment_webhook, name="payment_webhook"),
]
