"""Voiding an invoice, as the receivables see it: billing voids it and issues its
credit note (``billing.services.invoice_void``); the emails still waiting to go
for it (the invoice itself, a scheduled chase, one awaiting a manager's
approval) are cancelled in the same transaction, each saying why, so the
invoice page shows them "Not sent" at once instead of at their send time."""

from django.db import transaction
from django.utils import timezone

from billing import services as billing_services
from billing.models import Invoice
from pipeline.models import User
from receivables.models import CustomerEmail, EmailState

# Not yet handed to the mail server: these are stopped; one being sent now finds
# the invoice void when it checks again (``mail.email_refusal``) and stops too.
WAITING = (EmailState.QUEUED, EmailState.AWAITING_APPROVAL)


@transaction.atomic
def invoice_void_and_cancel_emails(*, invoice_id: int, actor: User, reason: str) -> Invoice:
    """Void the invoice with its credit note and cancel its waiting emails."""
    invoice = billing_services.invoice_void(invoice_id=invoice_id, actor=actor, reason=reason)
    note = invoice.credit_note
    CustomerEmail.objects.filter(invoice_id=invoice.pk, state__in=WAITING).update(
        state=EmailState.CANCELLED,
        outcome=f"Not sent: the invoice was voided (credit note {note.display_number}).",
        settled_at=timezone.now(),
    )
    return invoice
