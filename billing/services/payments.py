"""Payments: recorded pending, then cleared, bounced or charged back by compare-and-set
with their ledger row; a card or account secured on file."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.models import (
    STATUS_MOVES,
    EventSource,
    Instalment,
    Invoice,
    MethodKind,
    Payment,
    PaymentEvent,
    PaymentMethod,
    PaymentStatus,
)
from billing.policy import billing_refusal
from billing.services.commission import commission_claw_back, commission_earn
from billing.services.errors import (
    BillingError,
    _lock_deal,
    _refuse_closed,
    _require_manager,
    refuse_full_number,
)
from billing.services.standing import deal_sync_stage, live_money
from pipeline.history import history_record_update
from pipeline.models import Deal, User

# --- Payments -------------------------------------------


@transaction.atomic
def payment_record(
    *,
    deal_id: int,
    recorded_by: User,
    kind: str,
    method: str,
    amount: Decimal,
    reference: str = "",
    invoice: Invoice | None = None,
    instalment: Instalment | None = None,
    at: datetime | None = None,
    source: str = EventSource.STAFF,
) -> Payment:
    """Record money received against a deal; it is pending until it clears.

    ``source=EventSource.WEBHOOK``: the payment processor took it (the customer
    paying online, online/); ``recorded_by`` is then the deal's rep, and the
    ledger row names the processor, not a person.

    Refused, with nothing written: an amount of zero or less, a payment on a
    lost or written-off deal, and more than the balance still open (the
    amount less everything pending or cleared): Cleared never takes an
    overpayment. A deposit that is now in moves the deal to Deposit.
    """
    if amount is None or amount <= 0:
        raise BillingError("The amount must be more than zero.", field="amount")
    deal = _lock_deal(deal_id)
    _refuse_closed(deal, "no payment can be recorded against it")
    if refusal := billing_refusal(deal, payment=True):
        raise BillingError(refusal)
    balance = deal.amount - live_money(deal.pk)
    if amount > balance:
        raise BillingError(
            f"That is more than the open balance of {settings.CURRENCY_SYMBOL}{balance:,.2f}: "
            "Cleared does not take an overpayment.",
            field="amount",
        )
    if invoice is not None and (invoice.deal_id != deal.pk or invoice.is_void):
        raise BillingError("Pick an open invoice of this deal.", field="invoice")
    if instalment is not None and instalment.plan.deal_id != deal.pk:
        raise BillingError("Pick an instalment of this deal's plan.", field="instalment")
    now = at or timezone.now()
    payment = Payment.objects.create(
        deal=deal,
        invoice=invoice,
        instalment=instalment,
        kind=kind,
        method=method,
        amount=amount,
        reference=reference,
        recorded_by=recorded_by,
        recorded_at=now,
        status=PaymentStatus.PENDING,
        status_changed_at=now,
    )
    PaymentEvent.objects.create(
        payment=payment,
        from_status="",
        to_status=PaymentStatus.PENDING,
        reason=(
            "Paid online by card; the processor clears it."
            if source == EventSource.WEBHOOK
            else "Received; not cleared yet."
        ),
        actor=None if source == EventSource.WEBHOOK else recorded_by,
        source=source,
        at=now,
    )
    deal_sync_stage(deal=deal, actor=recorded_by, at=now)
    return payment


def _refusal(payment: Payment, to_status: str) -> str:
    """Why a payment in its current status cannot move to ``to_status``, in words."""
    current = PaymentStatus(payment.status)
    if current == to_status:
        return f"This payment is already {current.label.lower()}: nothing was changed."
    if current in (PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK):
        return f"This payment was {current.label.lower()}: it is final. Record a new payment."
    if to_status == PaymentStatus.CHARGED_BACK:
        return "Only a cleared payment can be charged back; bounce a pending one instead."
    target = PaymentStatus(to_status).label.lower()
    return f"A {current.label.lower()} payment cannot be marked {target}."


def _payment_move(
    *,
    payment_id: int,
    to_status: str,
    actor: User | None,
    reason: str,
    source: str,
    at: datetime | None,
) -> tuple[Payment, Deal, datetime]:
    """Move a payment to ``to_status`` with its ledger row: the compare-and-set
    that clearing, bouncing and charging back share.

    Staff moves are for a manager; the payment processor moves as the
    webhook (``actor=None``). Anything but clearing needs a reason. The
    status moves by ``UPDATE … WHERE status IN (…)`` under the deal's lock
    (deal first, then the payment: one order for every money write), so of
    two clerks clearing one payment at once, the second is told it is
    already cleared and writes nothing. Returns the payment as it was before,
    the locked deal and the time of the move.
    """
    if source == EventSource.STAFF:
        _require_manager(actor, "clear, bounce or charge back a payment")
    if to_status != PaymentStatus.CLEARED and not reason.strip():
        raise BillingError("Say why: the reason goes on the ledger.", field="reason")
    deal_id = Payment.objects.values_list("deal_id", flat=True).get(pk=payment_id)
    deal = _lock_deal(deal_id)
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    now = at or timezone.now()
    changes = {"status": to_status, "status_changed_at": now}
    if to_status == PaymentStatus.CLEARED:
        changes["cleared_at"] = now
    moved = Payment.objects.filter(pk=payment.pk, status__in=STATUS_MOVES[to_status]).update(
        **changes
    )
    if not moved:
        raise BillingError(_refusal(payment, to_status))
    history_record_update(Payment, [payment.pk])
    PaymentEvent.objects.create(
        payment=payment,
        from_status=payment.status,
        to_status=to_status,
        reason=reason.strip(),
        actor=actor,
        source=source,
        at=now,
    )
    return payment, deal, now


@transaction.atomic
def payment_clear(
    *,
    payment_id: int,
    actor: User | None,
    reason: str = "",
    source: str = EventSource.STAFF,
    at: datetime | None = None,
) -> Payment:
    """Clear a pending payment: the money is ours (DOMAIN.md, Payment cleared).

    For a manager or the payment processor, never a rep. The rep earns
    commission on it (``commission_earn``); cleared money that covers a
    delivered deal moves it to Payment cleared (``deal_sync_stage``).
    """
    payment, deal, now = _payment_move(
        payment_id=payment_id,
        to_status=PaymentStatus.CLEARED,
        actor=actor,
        reason=reason,
        source=source,
        at=at,
    )
    commission_earn(payment=payment, deal=deal, actor=actor, at=now)
    deal_sync_stage(deal=deal, actor=actor, at=now)
    payment.refresh_from_db()
    return payment


@transaction.atomic
def payment_bounce(
    *,
    payment_id: int,
    actor: User | None,
    reason: str,
    source: str = EventSource.STAFF,
    at: datetime | None = None,
) -> Payment:
    """A pending or cleared payment bounced (a check returned), with the reason.

    Commission it earned is clawed back (``commission_claw_back``), and a
    deal it no longer covers goes back out of Payment cleared (seed 004).
    """
    return _payment_taken_back(
        payment_id=payment_id,
        to_status=PaymentStatus.BOUNCED,
        actor=actor,
        reason=reason,
        source=source,
        at=at,
    )


@transaction.atomic
def payment_charge_back(
    *,
    payment_id: int,
    actor: User | None,
    reason: str,
    source: str = EventSource.STAFF,
    at: datetime | None = None,
) -> Payment:
    """A cleared card payment was charged back by the cardholder, with the reason.

    Like a bounce: the commission is clawed back and the deal follows its money.
    """
    return _payment_taken_back(
        payment_id=payment_id,
        to_status=PaymentStatus.CHARGED_BACK,
        actor=actor,
        reason=reason,
        source=source,
        at=at,
    )


def _payment_taken_back(*, payment_id, to_status, actor, reason, source, at) -> Payment:
    payment, deal, now = _payment_move(
        payment_id=payment_id,
        to_status=to_status,
        actor=actor,
        reason=reason,
        source=source,
        at=at,
    )
    commission_claw_back(payment=payment, deal=deal, actor=actor, at=now)
    how = (
        "A payment was charged back"
        if to_status == PaymentStatus.CHARGED_BACK
        else "A payment bounced"
    )
    deal_sync_stage(deal=deal, actor=actor, at=now, taken_back=how)
    payment.refresh_from_db()
    return payment


# The service for each status a form or the processor may ask a payment to move to.
PAYMENT_MOVES = {
    PaymentStatus.CLEARED: payment_clear,
    PaymentStatus.BOUNCED: payment_bounce,
    PaymentStatus.CHARGED_BACK: payment_charge_back,
}


def payment_move_service(to_status: str):
    """``payment_clear``, ``payment_bounce`` or ``payment_charge_back``, for a chosen status."""
    try:
        return PAYMENT_MOVES[to_status]
    except KeyError:
        raise BillingError("Choose cleared, bounced or charged back.", field="to_status") from None


@transaction.atomic
def payment_method_add(
    *,
    deal_id: int,
    recorded_by: User,
    kind: str,
    processor_token: str,
    brand: str,
    last4: str,
    at: datetime | None = None,
) -> PaymentMethod:
    """Secure a card or account on file: the processor's token, brand or bank, last 4.

    A full number in any field is refused and nothing of it is kept. On an
    on-file deal whose deposit is required, this is the deposit: the deal
    moves to Deposit.
    """
    refuse_full_number(processor_token, "processor_token")
    refuse_full_number(brand, "brand")
    last4 = last4.strip()
    if not (len(last4) == 4 and last4.isdigit()):
        raise BillingError("Enter exactly the last 4 digits, nothing more.", field="last4")
    if kind not in MethodKind.values:
        raise BillingError("Choose card or bank account.", field="kind")
    deal = _lock_deal(deal_id)
    _refuse_closed(deal, "nothing can be put on file for it")
    if deal.is_disputed:
        raise BillingError(billing_refusal(deal))
    now = at or timezone.now()
    method = PaymentMethod.objects.create(
        customer=deal.customer,
        deal=deal,
        kind=kind,
        processor_token=processor_token.strip(),
        brand=brand.strip(),
        last4=last4,
        recorded_by=recorded_by,
        recorded_at=now,
    )
    deal_sync_stage(deal=deal, actor=recorded_by, at=now)
    return method
