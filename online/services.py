"""Paying online: what the customer can pay from their link, the one PaymentIntent for it,
the pending payment each try records, and the processor's outcome applied to the ledger.

Every outcome — a webhook (``event_apply``), the reconciliation scan and the pay
page catching up (``intent_sync``) — goes through ``outcome_apply``, which moves
the payment with billing's own services (``billing.services.webhook_event_apply``:
the same clearing, bouncing and charge-back rules as a manager's click, idempotent
by event id). Nothing here knows a clearing rule.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import services as billing
from billing.models import (
    EventSource,
    Instalment,
    Invoice,
    Payment,
    PaymentKind,
    PaymentMethodKind,
    PaymentStatus,
    WebhookEvent,
)
from online import on_file, processor, refunds
from online.models import Intent, IntentPayment, IntentPurpose

# --- what the customer can pay -------------------------------------------------


@dataclass(frozen=True)
class Due:
    """The money the customer can pay online now on one invoice (an instalment of a plan)."""

    invoice: Invoice
    instalment: Instalment | None
    amount: Decimal


def _live(**where) -> Decimal:
    return billing.live_money(**where)


def due_for(invoice: Invoice) -> Due | None:
    """What is left to pay on ``invoice`` (less money cleared or on its way), or for a
    plan the instalment due first; None when nothing is (paid, pending, void)."""
    if invoice.is_void:
        return None
    left = invoice.amount - _live(invoice=invoice)
    instalment = None
    plan = getattr(invoice.deal, "payment_plan", None)
    if plan is not None:
        for candidate in plan.instalments.order_by("sequence"):
            instalment_left = candidate.amount - _live(instalment=candidate)
            if instalment_left > 0:
                instalment, left = candidate, min(left, instalment_left)
                break
    return Due(invoice, instalment, left) if left > 0 else None


def pay_state(invoice: Invoice, found) -> str:
    """What the customer's pay page offers, from the invoice's PaymentIntent as the
    processor has it: "paid", "processing", "closed", the card form ("pay"), or
    "nothing" when the invoice was paid meanwhile by other means."""
    if found.status == "succeeded":
        return "paid"
    if found.status == "processing":
        return "processing"
    if found.status == "canceled":
        return "closed"
    return "pay" if due_for(invoice) is not None else "nothing"


def _intent_lookup(invoice: Invoice, instalment: Instalment | None) -> Intent | None:
    intents = Intent.objects.filter(purpose=IntentPurpose.PAY_LINK)
    if instalment is not None:
        return intents.filter(instalment=instalment).first()
    return intents.filter(invoice=invoice, instalment__isnull=True).first()


def intent_for_link(invoice: Invoice) -> Intent | None:
    """The PaymentIntent of this invoice's pay page, found or made — never a second one.

    Found first by the invoice (or the plan's instalment due), so a second page
    load meets the first try. Made under the invoice's row lock with an
    idempotency key, so two loads at once make one. Its amount follows what is
    due while nobody has paid it yet. None when nothing is due and none exists.
    """
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("deal").get(pk=invoice.pk)
        due = due_for(invoice)
        plan_instalment = due.instalment if due else None
        intent = _intent_lookup(invoice, plan_instalment)
        if intent is None and due is None:
            return _intent_lookup(invoice, None)
        if intent is None:
            deal = invoice.deal
            made = processor.payment_intent_create(
                amount=due.amount,
                customer_id=processor.customer_for(deal.customer),
                metadata=processor.Metadata(
                    deal_id=deal.pk,
                    invoice_id=invoice.pk,
                    instalment_id=plan_instalment.pk if plan_instalment else None,
                    purpose=IntentPurpose.PAY_LINK,
                ),
                idempotency_key=(
                    f"cleared-link-{invoice.pk}-{plan_instalment.pk if plan_instalment else 0}"
                    f"-{processor.to_cents(due.amount)}"
                ),
                description=f"{invoice.display_number}",
            )
            return Intent.objects.create(
                processor_id=made.id,
                purpose=IntentPurpose.PAY_LINK,
                deal=deal,
                invoice=invoice,
                instalment=plan_instalment,
                amount=processor.from_cents(made.amount, made.currency),
                currency=made.currency,
            )
        if due is not None and due.amount != intent.amount and not intent_pending(intent):
            changed = processor.payment_intent_set_amount(intent.processor_id, due.amount)
            intent.amount = processor.from_cents(changed.amount, changed.currency)
            intent.save(update_fields=["amount"])
        return intent


def intent_pending(intent: Intent) -> Payment | None:
    """The try of this intent still pending (the processor has not answered yet)."""
    attempt = (
        intent.attempts.filter(payment__status=PaymentStatus.PENDING)
        .select_related("payment")
        .first()
    )
    return attempt.payment if attempt else None


def intent_cleared(intent: Intent) -> Payment | None:
    attempt = (
        intent.attempts.filter(payment__status=PaymentStatus.CLEARED)
        .select_related("payment")
        .first()
    )
    return attempt.payment if attempt else None


# --- a try: the pending payment ------------------------------------------------


def charge_id(found) -> str:
    """The id of a PaymentIntent's latest charge (an id, or the expanded charge)."""
    charge = found.latest_charge
    return "" if not charge else charge if isinstance(charge, str) else charge.id


def attempt_record(intent: Intent, found=None, at: datetime | None = None) -> Payment:
    """The customer is paying: a pending card payment recorded at once (or the pending
    one this intent already has: a double click records one).

    Recorded as the processor's (``EventSource.WEBHOOK``), against the invoice and
    instalment, for the intent's amount; the rep's reminder says the customer is
    paying online. Refusals (a disputed deal, more than the balance) are
    ``billing.services.BillingError``.
    """
    with transaction.atomic():
        Intent.objects.select_for_update().filter(pk=intent.pk).first()
        pending = intent_pending(intent)
        if pending is not None:
            return pending
        found = found or processor.payment_intent_retrieve(intent.processor_id)
        payment = billing.payment_record(
            deal_id=intent.deal_id,
            recorded_by=intent.deal.rep,
            kind=PaymentKind.INSTALMENT if intent.instalment_id else PaymentKind.FINAL,
            method=PaymentMethodKind.CARD,
            amount=intent.amount,
            reference=f"Paid online ({intent.processor_id})",
            invoice=intent.invoice,
            instalment=intent.instalment,
            at=at,
            source=EventSource.WEBHOOK,
        )
        IntentPayment.objects.create(
            intent=intent,
            payment=payment,
            charge_before=charge_id(found),
            created_at=payment.recorded_at,
        )
        return payment


# --- the processor's answer ----------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str  # "applied", "ignored", "duplicate"
    detail: str
    payment_id: int | None = None


def _stored(payload: dict) -> dict:
    """The event as kept: without the intent's client secret (the browser's key to it)."""
    if isinstance(payload, dict):
        return {k: _stored(v) for k, v in payload.items() if k != "client_secret"}
    if isinstance(payload, list):
        return [_stored(v) for v in payload]
    return payload


def _record_only(event_id: str, type: str, payload: dict, detail: str) -> Outcome:
    """A valid event that moves no payment: recorded (so it is applied once), ignored."""
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                event_id=event_id,
                type=type[:40],
                payload=_stored(payload),
                outcome=f"ignored: {detail}"[:200],
            )
    except IntegrityError:
        return Outcome("duplicate", "Already received; nothing changed.")
    return Outcome("ignored", detail)


@transaction.atomic
def outcome_apply(
    *,
    intent: Intent,
    to_status: str,
    event_id: str,
    type: str,
    reason: str,
    payload: dict,
    charge: str = "",
) -> Outcome:
    """Apply what the processor says of ``intent`` to its payment: the webhook's, the
    reconciliation's and the pay page's one path into the ledger.

    Cleared: the pending try clears (a success with no try recorded — the browser
    never told us — records one first). Bounced: the pending try bounces (the rep
    is reminded as for any bounce) — unless ``charge``, the declined charge, is
    an earlier try's (the customer is already trying again). Charged back: the
    cleared try is taken back with its commission. Repeated event ids change nothing.
    """
    if WebhookEvent.objects.filter(event_id=event_id).exists():
        return Outcome("duplicate", "Already received; nothing changed.")
    if to_status == PaymentStatus.CHARGED_BACK:
        payment = intent_cleared(intent)
    else:
        payment = intent_pending(intent)
        if payment is None and to_status == PaymentStatus.CLEARED and not intent_cleared(intent):
            payment = attempt_record(intent)
    if payment is None:
        return _record_only(event_id, type, payload, f"No payment of {intent} to move.")
    stale = charge and charge == payment.processor_attempt.charge_before
    if to_status == PaymentStatus.BOUNCED and stale:
        return _record_only(event_id, type, payload, "An earlier try's decline.")
    outcome = billing.webhook_event_apply(
        event_id=event_id,
        type=type[:40],
        to_status=to_status,
        payment_id=payment.pk,
        reason=reason,
        payload=_stored(payload),
    )
    return Outcome(outcome.status, outcome.detail, payment.pk)


def _error_message(intent_object: dict) -> str:
    error = intent_object.get("last_payment_error") or {}
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or "The card was declined.")[:300]


_INTENT_EVENTS = {
    "payment_intent.succeeded": PaymentStatus.CLEARED,
    "payment_intent.payment_failed": PaymentStatus.BOUNCED,
    "payment_intent.processing": PaymentStatus.PENDING,
}


def event_apply(event: dict) -> Outcome:
    """A verified Stripe event (a dict) applied once. ``KeyError``/``TypeError`` on a
    malformed one (the view answers 400)."""
    event_id, type, obj = event["id"], event["type"], event["data"]["object"]
    if not isinstance(event_id, str) or not isinstance(type, str) or not isinstance(obj, dict):
        raise TypeError("Not a Stripe event.")
    if type in _INTENT_EVENTS:
        intent_id = obj["id"]
    elif type == "charge.dispute.created":
        intent_id = obj.get("payment_intent")
        if not intent_id and obj.get("charge"):
            intent_id = processor.charge_retrieve(str(obj["charge"])).payment_intent
    elif type == "charge.refunded":
        settled = refunds.refunds_from_charge(obj)
        return _record_only(event_id, type, event, f"Settled {settled} of Cleared's refunds.")
    elif type == "setup_intent.succeeded":
        return _record_only(event_id, type, event, on_file.setup_from_event(obj))
    else:
        return _record_only(event_id, type, event, "Cleared does not act on this event.")
    intent = Intent.objects.filter(processor_id=str(intent_id)).select_related("deal").first()
    if intent is None:
        return _record_only(event_id, type, event, "Not a payment Cleared asked for.")
    if type == "payment_intent.processing":
        with transaction.atomic():
            if WebhookEvent.objects.filter(event_id=event_id).exists():
                return Outcome("duplicate", "Already received; nothing changed.")
            payment = attempt_record(intent)
            _record_only(event_id, type, event, f"Payment {payment.pk} is pending.")
            return Outcome("applied", f"Payment {payment.pk} is pending.", payment.pk)
    if type == "charge.dispute.created":
        reason = f"Disputed by the cardholder ({obj.get('reason') or 'no reason given'})."
        to_status = PaymentStatus.CHARGED_BACK
    else:
        to_status = _INTENT_EVENTS[type]
        reason = "" if to_status == PaymentStatus.CLEARED else _error_message(obj)
    error = obj.get("last_payment_error")
    charge = obj.get("latest_charge") or (error.get("charge") if isinstance(error, dict) else "")
    return outcome_apply(
        intent=intent,
        to_status=to_status,
        event_id=event_id,
        type=type,
        reason=reason,
        payload=event,
        charge=str(charge.get("id", "") if isinstance(charge, dict) else charge or ""),
    )


def intent_sync(intent: Intent, found=None, now: datetime | None = None) -> Outcome | None:
    """Catch up with the processor: its PaymentIntent's state applied as its webhook
    would have (a webhook never delivered, a worker killed before the ledger write).

    Succeeded clears the pending try; a decline bounces it; a try the customer
    left unfinished for ``ONLINE_ABANDONED_MINUTES`` bounces too ("not
    finished"). Still working (processing, 3-D Secure): nothing yet.
    """
    found = found or processor.payment_intent_retrieve(intent.processor_id)
    pending = intent_pending(intent)
    now = now or timezone.now()
    state = found.status
    if state == "succeeded":
        to_status, reason = PaymentStatus.CLEARED, ""
    elif pending is None:
        return None
    elif (
        state == "requires_payment_method"
        and found.last_payment_error
        and charge_id(found) != pending.processor_attempt.charge_before
    ):
        to_status, reason = PaymentStatus.BOUNCED, _error_message(found.to_dict())
    elif state == "canceled" or (
        state == "requires_payment_method"
        and pending.recorded_at < now - timedelta(minutes=settings.ONLINE_ABANDONED_MINUTES)
    ):
        to_status, reason = PaymentStatus.BOUNCED, "The customer did not finish paying by card."
    else:
        return None
    tag = pending.pk if pending else "done"
    return outcome_apply(
        intent=intent,
        to_status=to_status,
        event_id=f"sync:{intent.processor_id}:{tag}:{to_status}",
        type=f"sync.{state}",
        reason=reason,
        payload={"id": found.id, "status": state, "source": "reconciliation"},
    )


def reconcile(now: datetime | None = None) -> int:
    """Look up at the processor every intent with a try pending longer than
    ``ONLINE_RECONCILE_AFTER_SECONDS`` and apply its state (``intent_sync``).
    Returns how many payments moved. A processor that does not answer is tried
    again at the next run."""
    now = now or timezone.now()
    since = now - timedelta(seconds=settings.ONLINE_RECONCILE_AFTER_SECONDS)
    intents = Intent.objects.filter(
        attempts__payment__status=PaymentStatus.PENDING, attempts__created_at__lt=since
    ).distinct()
    moved = 0
    for intent in intents.select_related("deal"):
        try:
            outcome = intent_sync(intent, now=now)
        except processor.ProcessorError:
            continue
        moved += bool(outcome and outcome.status == "applied")
    return moved
