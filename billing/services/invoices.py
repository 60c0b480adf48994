"""Invoices: what is left to invoice, issuing one from the gap-free sequence, voiding
one sent in error."""

from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import (
    LIVE_STATUSES,
    Invoice,
    InvoiceSequence,
    invoice_due_date,
)
from billing.models.credit_notes import CreditNote, next_credit_note_number
from billing.policy import billing_refusal, left_to_invoice
from billing.selectors import (
    invoicing_request_refusal,
)
from billing.services.errors import (
    BillingError,
    _deal_changed,
    _lock_deal,
    _refuse_closed,
    _require_manager,
)
from billing.services.standing import customer_refresh_standing, live_money
from pipeline.history import history_record_update
from pipeline.models import Deal, User
from pipeline.terms import PaymentOption, money_sum

# --- Invoices -------------------------------------------


def invoiced_money(deal_id: int) -> Decimal:
    """The deal's invoices not void, summed in SQL."""
    return Invoice.objects.filter(deal_id=deal_id, voided_at__isnull=True).aggregate(
        total=money_sum("amount")
    )["total"]


def invoiceable_money(deal: Deal) -> Decimal:
    """What is left to invoice (``billing.policy.left_to_invoice``), from the ledger."""
    paid_without_invoice = live_money(deal.pk, invoice__isnull=True)
    return left_to_invoice(deal.amount, invoiced_money(deal.pk), paid_without_invoice)


def _next_invoice_number() -> int:
    """Take the next number from the deployment's counter, locked until commit."""
    InvoiceSequence.objects.get_or_create(pk=1)
    sequence = InvoiceSequence.objects.select_for_update().get(pk=1)
    InvoiceSequence.objects.filter(pk=1).update(last_number=F("last_number") + 1)
    return sequence.last_number + 1


@transaction.atomic
def invoice_issue(
    *,
    deal_id: int,
    issued_by: User,
    amount: Decimal | None = None,
    issue_date: date | None = None,
    terms_days: int | None = None,
    at: datetime | None = None,
) -> Invoice:
    """Issue an invoice for a billed deal, numbered from the gap-free sequence.

    Only invoice deals are invoiced, never for more than is left to bill
    (``invoiceable_money``); the amount defaults to all of that. Terms default to net
    ``CLEARED_INVOICE_TERMS_DAYS``; the due date follows from them.
    """
    deal = _lock_deal(deal_id)
    _refuse_closed(deal, "it cannot be invoiced")
    if deal.payment_option != PaymentOption.INVOICE:
        raise BillingError(
            f"This deal is paid {deal.get_payment_option_display().split(' —')[0].lower()}: "
            "it is not invoiced."
        )
    if refusal := billing_refusal(deal) or invoicing_request_refusal(deal):
        raise BillingError(refusal)
    uninvoiced = invoiceable_money(deal)
    if uninvoiced <= 0:
        raise BillingError("The whole amount is invoiced or paid already.", field="amount")
    amount = uninvoiced if amount is None else amount
    if amount <= 0:
        raise BillingError("The amount must be more than zero.", field="amount")
    if amount > uninvoiced:
        raise BillingError(
            f"Only {settings.CURRENCY_SYMBOL}{uninvoiced:,.2f} is left to invoice.",
            field="amount",
        )
    issue_date = issue_date or timezone.localdate()
    terms_days = settings.CLEARED_INVOICE_TERMS_DAYS if terms_days is None else terms_days
    invoice = Invoice.objects.create(
        deal=deal,
        number=_next_invoice_number(),
        amount=amount,
        issue_date=issue_date,
        terms_days=terms_days,
        due_date=invoice_due_date(issue_date, terms_days),
        issued_by=issued_by,
        issued_at=at or timezone.now(),
    )
    # An invoice is payment history: one past its due date makes a customer late.
    customer_refresh_standing(customer_id=deal.customer_id)
    _deal_changed(deal.pk, issued_by)
    return invoice


@transaction.atomic
def invoice_void(*, invoice_id: int, actor: User, reason: str) -> Invoice:
    """Void an invoice sent in error (manager only); its number stays used.

    An issued invoice is never changed or deleted: voiding it issues a credit
    note for its amount (``billing.models.credit_notes``), numbered from its own
    gap-free series in this transaction. Its emails still waiting are the
    receivables' to stop (``receivables.voiding``)."""
    _require_manager(actor, "void an invoice")
    if not reason.strip():
        raise BillingError("Say why the invoice is void.", field="reason")
    invoice = Invoice.objects.get(pk=invoice_id)
    deal = _lock_deal(invoice.deal_id)
    if invoice.payments.filter(status__in=LIVE_STATUSES).exists():
        raise BillingError("Payments are recorded against this invoice: it cannot be voided.")
    voided = Invoice.objects.filter(pk=invoice.pk, voided_at__isnull=True).update(
        voided_at=timezone.now(), voided_by=actor, void_reason=reason.strip()
    )
    if not voided:
        raise BillingError("This invoice is void already.")
    history_record_update(Invoice, [invoice.pk])
    CreditNote.objects.create(
        invoice=invoice,
        number=next_credit_note_number(),
        amount=invoice.amount,
        reason=reason.strip(),
        issued_by=actor,
    )
    customer_refresh_standing(customer_id=deal.customer_id)
    _deal_changed(deal.pk, actor)
    invoice.refresh_from_db()
    return invoice
