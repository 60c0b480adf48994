"""Payments and invoices: what the billing pages do (billing.views), as JSON.

The invoice's PDF is the one import here of code moving to ``receivables``
(``invoice_pdf``, ``pdf_unavailable``): fix these two lines when it moves.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from api.endpoints.deals import form_data
from api.paging import DEFAULT_LIMIT, MAX_LIMIT, keyset_page
from api.problems import FormInvalid, Problem, field_problem
from api.schemas import (
    ERRORS,
    InvoiceIn,
    InvoiceOut,
    InvoicePage,
    PaymentIn,
    PaymentOut,
    PaymentPage,
    PaymentStatusIn,
    ProblemOut,
)
from billing import selectors
from billing.forms import InvoiceForm, PaymentForm, PaymentStatusForm
from billing.models import Invoice, Payment
from billing.services import BillingError, invoice_issue, payment_move_service, payment_record
from pipeline import access
from receivables.mail import invoice_pdf
from receivables.pdf import pdf_unavailable

router = Router(tags=["payments and invoices"])


def _refused(exc: BillingError, fields) -> Problem:
    return field_problem(exc.field if exc.field in fields else None, str(exc))


class PaymentFilters(Schema):
    status: str = ""
    cursor: str = ""
    limit: int = DEFAULT_LIMIT


@router.get("/payments", response={200: PaymentPage, **ERRORS}, summary="List payments")
def payment_list(request: HttpRequest, filters: Query[PaymentFilters]):
    """Payments on the deals you see, newest first; ``status`` filters (pending…)."""
    access.require_seller(request.user)
    payments = selectors.payments_for(request.user, filters.status)
    limit = min(max(filters.limit, 1), MAX_LIMIT)
    items, cursor = keyset_page(payments, "id", filters.cursor, limit, int)
    return {"items": items, "next_cursor": cursor}


@router.post(
    "/deals/{int:deal_id}/payments", response={201: PaymentOut, **ERRORS}, summary="Record"
)
def payment_create(request: HttpRequest, deal_id: int, payload: PaymentIn):
    """Record a payment on the deal: pending until a manager clears it."""
    deal = access.get_deal_for(request.user, deal_id)
    form = PaymentForm(form_data(payload), deal=deal)
    if not form.is_valid():
        raise FormInvalid(form)
    try:
        payment = payment_record(deal_id=deal.pk, recorded_by=request.user, **form.cleaned_data)
    except BillingError as exc:
        raise _refused(exc, form.fields) from exc
    return Status(201, payment)


@router.post(
    "/payments/{int:payment_id}/status",
    response={200: PaymentOut, **ERRORS},
    summary="Clear, bounce or charge back",
)
def payment_status(request: HttpRequest, payment_id: int, payload: PaymentStatusIn):
    """Managers only: the payment has cleared, bounced or been charged back."""
    payment = get_object_or_404(Payment.objects.visible_to(request.user), pk=payment_id)
    access.require_manager(request.user)
    form = PaymentStatusForm(form_data(payload))
    if not form.is_valid():
        raise FormInvalid(form)
    try:
        move = payment_move_service(form.cleaned_data["to_status"])
        return move(payment_id=payment.pk, actor=request.user, reason=form.cleaned_data["reason"])
    except BillingError as exc:
        if exc.field in form.fields:
            raise _refused(exc, form.fields) from exc
        raise Problem(409, str(exc)) from exc


class InvoiceFilters(Schema):
    state: str = ""
    cursor: str = ""
    limit: int = DEFAULT_LIMIT


@router.get("/invoices", response={200: InvoicePage, **ERRORS}, summary="List invoices")
def invoice_list(request: HttpRequest, filters: Query[InvoiceFilters]):
    """Invoices of the deals you see, newest first; ``state``: open, overdue, paid, void."""
    access.require_seller(request.user)
    invoices = selectors.invoices_for(request.user, filters.state)
    limit = min(max(filters.limit, 1), MAX_LIMIT)
    items, cursor = keyset_page(invoices, "id", filters.cursor, limit, int)
    return {"items": items, "next_cursor": cursor}


@router.post("/deals/{int:deal_id}/invoices", response={201: InvoiceOut, **ERRORS}, summary="Issue")
def invoice_create(request: HttpRequest, deal_id: int, payload: InvoiceIn):
    """Issue an invoice on the deal (numbered, due after its terms)."""
    deal = access.get_deal_for(request.user, deal_id)
    form = InvoiceForm(form_data(payload))
    if not form.is_valid():
        raise FormInvalid(form)
    try:
        invoice = invoice_issue(deal_id=deal.pk, issued_by=request.user, **form.cleaned_data)
    except BillingError as exc:
        raise _refused(exc, form.fields) from exc
    return Status(201, invoice)


@router.get(
    "/invoices/{int:invoice_id}/pdf",
    response={200: None, **ERRORS, 503: ProblemOut},
    summary="The invoice's PDF",
    openapi_extra={
        "responses": {200: {"description": "The PDF", "content": {"application/pdf": {}}}}
    },
)
def invoice_pdf_download(request: HttpRequest, invoice_id: int):
    access.require_seller(request.user)
    invoice = get_object_or_404(
        Invoice.objects.visible_to(request.user).select_related("deal__customer", "deal__rep"),
        pk=invoice_id,
    )
    if reason := pdf_unavailable():
        raise Problem(503, reason)
    response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.display_number}.pdf"'
    return response
