"""Receivables pages a rep or manager opens: the printable invoice, the customer's
statement (and its PDF) and days sales outstanding. The invoice's emails and
chase are in ``receivables.email_views``; the customer's own link in
``receivables.link_views``."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing import selectors as billing_selectors
from pipeline.access import get_customer_for, require_manager, require_seller
from pipeline.models import Deal
from receivables import selectors
from receivables.charts import dso_chart, receivables_chart
from receivables.email_views import invoice_page
from receivables.pdf import PdfUnavailable, pdf_unavailable, render_pdf


@require_GET
def invoice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The printable invoice (print CSS; its PDF is made from the same template)."""
    require_seller(request.user)
    invoice = get_object_or_404(
        billing_selectors.invoices_for(request.user).select_related("issued_by", "voided_by"), pk=pk
    )
    return invoice_page(request, invoice)


@require_GET
def customer_statement(request: HttpRequest, pk: int) -> HttpResponse:
    """The customer's statement, printable: their open invoices, payments and what is due,
    as far as the user's deals go (a rep's own; a manager's team's)."""
    require_seller(request.user)
    customer = get_customer_for(request.user, pk)
    as_of = timezone.localdate()
    context = selectors.statement_context(
        customer, as_of, deals=Deal.objects.visible_to(request.user)
    )
    context["back_url"] = customer.get_absolute_url()
    context["pdf_url"] = reverse("billing:customer_statement_pdf", args=[customer.pk])
    return render(request, "receivables/statement.html", context)


@require_GET
def customer_statement_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The same statement as a PDF, from the same template (receivables/pdf.py)."""
    require_seller(request.user)
    customer = get_customer_for(request.user, pk)
    as_of = timezone.localdate()
    context = selectors.statement_context(
        customer, as_of, deals=Deal.objects.visible_to(request.user)
    )
    reason = pdf_unavailable()
    if not reason:
        try:
            document = render_pdf("receivables/statement.html", context)
        except PdfUnavailable as exc:
            reason = str(exc)
    if reason:
        back = {"reason": reason, "back": reverse("billing:customer_statement", args=[pk])}
        return render(request, "receivables/pdf_unavailable.html", back, status=503)
    response = HttpResponse(document, content_type="application/pdf")
    name = f"Statement {as_of.isoformat()}.pdf"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    return response


@require_GET
def dso_report(request: HttpRequest) -> HttpResponse:
    """Days sales outstanding per rep and per customer: managers, their team only."""
    require_manager(request.user)
    report = selectors.dso_report(request.user)
    context = {
        "report": report,
        "rep_chart": dso_chart(report.reps),
        "customer_chart": receivables_chart(report.customers[:10]),
        "terms_days": settings.CLEARED_INVOICE_TERMS_DAYS,
    }
    return render(request, "receivables/dso_report.html", context)
