"""The payment processor's events applied to the ledger (verified and parsed in
billing.webhooks)."""

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from billing.models import (
    EventSource,
    Payment,
    WebhookEvent,
)
from billing.services.errors import BillingError
from billing.services.payments import payment_move_service

# --- The payment processor's webhook -------------------------------------------


@dataclass(frozen=True)
class WebhookOutcome:
    status: str  # "applied", "ignored" (valid but refused, e.g. already cleared), "duplicate"
    detail: str


@transaction.atomic
def webhook_event_apply(
    *, event_id: str, type: str, to_status: str, payment_id: int, reason: str, payload: dict
) -> WebhookOutcome:
    """Apply a verified processor event once (``billing.webhooks`` checks the signature).

    A repeated event id changes nothing. A valid event the ledger refuses (a
    payment a manager cleared already) is recorded as ignored, so the
    processor stops retrying it. The event row and the status change commit
    together; of two deliveries racing, the unique event id lets one win.
    """
    if not Payment.objects.filter(pk=payment_id).exists():
        raise BillingError(f"No payment {payment_id} in Cleared.")
    if WebhookEvent.objects.filter(event_id=event_id).exists():
        return WebhookOutcome("duplicate", "Already received; nothing changed.")
    try:
        with transaction.atomic():
            payment_move_service(to_status)(
                payment_id=payment_id,
                actor=None,
                reason=reason or f"Reported by the payment processor ({type}).",
                source=EventSource.WEBHOOK,
            )
        outcome = WebhookOutcome("applied", f"Payment {payment_id} is {to_status}.")
    except BillingError as exc:
        outcome = WebhookOutcome("ignored", str(exc))
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                event_id=event_id,
                type=type,
                payment_id=payment_id,
                payload=payload,
                outcome=f"{outcome.status}: {outcome.detail}"[:200],
            )
    except IntegrityError:
        # The same event committed meanwhile: undo ours, report it as a repeat.
        transaction.set_rollback(True)
        return WebhookOutcome("duplicate", "Already received; nothing changed.")
    return outcome
