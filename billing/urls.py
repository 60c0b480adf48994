from django.urls import path

from billing import email_views, link_views, views, webhooks

app_name = "billing"

urlpatterns = [
    path("payments/", views.payment_list, name="payment_list"),
    path("payments/<int:pk>/status/", views.payment_status, name="payment_status"),
    path("invoices/", views.invoice_list, name="invoice_list"),
    path("invoices/<int:pk>/", views.invoice_detail, name="invoice_detail"),
    path("invoices/<int:pk>/void/", views.invoice_void, name="invoice_void"),
    path("invoices/<int:pk>/pdf/", email_views.invoice_pdf, name="invoice_pdf"),
    path("invoices/<int:pk>/send/", email_views.invoice_send, name="invoice_send"),
    path("invoices/<int:pk>/chase/<int:rung>/", email_views.chase_page, name="chase"),
    path("chasing/", email_views.chasing, name="chasing"),
    path("chasing/<int:rung>/", email_views.chasing_save, name="chasing_save"),
    path("chasing/<int:rung>/preview/", email_views.chasing_preview, name="chasing_preview"),
    path("commission/", views.commission, name="commission"),
    path("dso/", views.dso_report, name="dso_report"),
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
    path("customers/<int:pk>/statement/", views.customer_statement, name="customer_statement"),
    path(
        "customers/<int:pk>/statement/pdf/",
        views.customer_statement_pdf,
        name="customer_statement_pdf",
    ),
    path("customers/<int:pk>/links/new/", link_views.link_new, name="link_new"),
    path("links/<int:pk>/revoke/", link_views.link_revoke, name="link_revoke"),
    # The customer's own page: public, the signed token is the credential (billing/links.py).
    path("pay/<str:token>/", link_views.customer_link, name="customer_link"),
    path("webhooks/payments/", webhooks.payment_webhook, name="payment_webhook"),
]
