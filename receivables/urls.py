"""Receivables' pages. They keep the paths and names they had under billing
(``/billing/…``, ``billing:…``): config/urls.py mounts them with billing's, so a
customer's link already emailed still opens and every ``{% url "billing:…" %}``
still resolves."""

from django.urls import path

from receivables import email_views, link_views, views, void_views

urlpatterns = [
    path("invoices/<int:pk>/", views.invoice_detail, name="invoice_detail"),
    path("invoices/<int:pk>/void/", void_views.invoice_void, name="invoice_void"),
    path("invoices/<int:pk>/pdf/", email_views.invoice_pdf, name="invoice_pdf"),
    path("invoices/<int:pk>/send/", email_views.invoice_send, name="invoice_send"),
    path("invoices/<int:pk>/chase/<int:rung>/", email_views.chase_page, name="chase"),
    path("invoices/<int:pk>/chase/", email_views.chase_now, name="chase_now"),
    path("chasing/", email_views.chasing, name="chasing"),
    path("chasing/<int:rung>/", email_views.chasing_save, name="chasing_save"),
    path("chasing/<int:rung>/preview/", email_views.chasing_preview, name="chasing_preview"),
    path("dso/", views.dso_report, name="dso_report"),
    path("customers/<int:pk>/statement/", views.customer_statement, name="customer_statement"),
    path(
        "customers/<int:pk>/statement/pdf/",
        views.customer_statement_pdf,
        name="customer_statement_pdf",
    ),
    path("customers/<int:pk>/links/new/", link_views.link_new, name="link_new"),
    path("links/<int:pk>/revoke/", link_views.link_revoke, name="link_revoke"),
    # The customer's own page: public, the signed token is the credential (receivables/links.py).
    path("pay/<str:token>/", link_views.customer_link, name="customer_link"),
]
