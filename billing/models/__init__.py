"""Money: what the customer owes, what they paid, what has cleared.

Payments, their clearing changes and commission entries are append-only
ledgers (DOMAIN.md, "It isn't a sale until you're paid"): a correction is a
new row, never an edit, and every row says who and when. The one column that
changes on a payment — its current ``status`` — is a denormalised copy of its
newest ``PaymentEvent``, written only by compare-and-set in
``billing.services`` in the same transaction as that event.

The models live in one module per subject (``asks``, ``ledger``, ``commission``, ``credit_notes``);
every name is importable from ``billing.models`` as before.
"""

from billing.models.asks import ExceptionKind, ExceptionRequest, RequestState, TermsException
from billing.models.commission import CommissionEntry, CommissionKind, CommissionRate, rate_percent
from billing.models.credit_notes import CreditNote, CreditNoteSequence
from billing.models.ledger import (
    LIVE_REFUNDS,
    LIVE_STATUSES,
    STATUS_MOVES,
    EventSource,
    Instalment,
    Invoice,
    InvoiceQuerySet,
    InvoiceSequence,
    InvoiceState,
    MethodKind,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentMethod,
    PaymentMethodKind,
    PaymentPlan,
    PaymentQuerySet,
    PaymentStatus,
    Refund,
    RefundStatus,
    WebhookEvent,
    invoice_display_number,
    invoice_due_date,
    paid_against,
    refunded_on,
)

__all__ = [
    "CreditNote",
    "CreditNoteSequence",
    "ExceptionKind",
    "TermsException",
    "RequestState",
    "ExceptionRequest",
    "MethodKind",
    "PaymentMethod",
    "InvoiceSequence",
    "InvoiceState",
    "InvoiceQuerySet",
    "invoice_display_number",
    "Invoice",
    "invoice_due_date",
    "PaymentPlan",
    "Instalment",
    "PaymentKind",
    "PaymentMethodKind",
    "PaymentStatus",
    "STATUS_MOVES",
    "LIVE_STATUSES",
    "PaymentQuerySet",
    "Payment",
    "paid_against",
    "Refund",
    "RefundStatus",
    "LIVE_REFUNDS",
    "refunded_on",
    "EventSource",
    "PaymentEvent",
    "WebhookEvent",
    "CommissionRate",
    "rate_percent",
    "CommissionKind",
    "CommissionEntry",
]
