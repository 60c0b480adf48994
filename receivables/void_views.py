"""Voiding an invoice from its page: the Void button and its reason (managers: the
``invoice_void`` rule in billing.services), then the invoice shows its credit
note and its emails that will not go."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from billing.forms import ReasonForm
from billing.services import BillingError
from pipeline.access import can_manage
from receivables.email_views import _invoice_for, invoice_page
from receivables.voiding import invoice_void_and_cancel_emails


@require_POST
def invoice_void(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = _invoice_for(request.user, pk)
    if not can_manage(request.user):
        raise PermissionDenied("Only a manager voids an invoice: ask yours.")
    form = ReasonForm(request.POST)
    if form.is_valid():
        try:
            invoice = invoice_void_and_cancel_emails(
                invoice_id=invoice.pk, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except BillingError as exc:
            form.add_error("reason" if exc.field == "reason" else None, str(exc))
        else:
            note = invoice.credit_note
            messages.success(
                request,
                f"Invoice {invoice} is void; credit note {note.display_number} is issued "
                "for its amount. Its number stays used.",
            )
            return redirect(invoice)
    return invoice_page(request, invoice, void_form=form, status=422)
