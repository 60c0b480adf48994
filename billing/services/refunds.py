"""Refunds: cleared money given back, in full or in part, as rows of their own; and the
seam through which a payment processor sends them (billing never imports one)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import LIVE_REFUNDS, Payment, PaymentStatus, Refund, RefundStatus
from billing.services.commission import commission_refund_claw_back, commission_refund_restore
from billing.services.errors import BillingError, _lock_deal, _require_manager
from billing.services.standing import deal_sync_stage
from pipeline.models import User
from pipeline.terms import ZERO

# --- The processor's seam -------------------------------------------


@dataclass(frozen=True)
class RefundSender:
    """How a payment processor takes refunds, registered by the app that talks to it.

    ``owns(payment)`` says whether the processor took this payment (its money
    goes back the same way); ``send(refund_id)`` is called after the refund's
    row committed, and hands it to the processor (a task, so a slow processor
    never holds a page); the processor's answer comes back through
    ``refund_settle`` or ``refund_fail``.
    """

    owns: Callable[[Payment], bool]
    send: Callable[[int], None]


_senders: list[RefundSender] = []


def refund_sender_register(sender: RefundSender) -> None:
    """Called once from the processor app's ``ready()``."""
    if sender not in _senders:
        _senders.append(sender)


def _sender_for(payment: Payment) -> RefundSender | None:
    return next((sender for sender in _senders if sender.owns(payment)), None)


# --- Refunds -------------------------------------------


def refundable(payment: Payment) -> Decimal:
    """What is left to refund of a payment: its amount less its refunds given back or on
    their way. Read under the deal's lock by ``payment_refund``; the form shows it."""
    refunds = Refund.objects.filter(payment=payment, status__in=LIVE_REFUNDS)
    return payment.amount - refunds.aggregate(total=Coalesce(Sum("amount"), ZERO))["total"]


@transaction.atomic
def payment_refund(
    *,
    payment_id: int,
    actor: User,
    amount: Decimal | None,
    reason: str,
    at: datetime | None = None,
) -> Refund:
    """Give back money of a cleared payment, in full or in part, with the reason (manager).

    Refused, with nothing written: a rep, no reason, an amount of zero or
    less, a payment not cleared, and more than is left unrefunded. The deal
    is locked first, then the payment, as for every money write: of two
    managers refunding at once, the second sees the first's refund and may
    only give back what is left. The refund comes off the deal's cleared
    money at once (a deal it no longer covers goes back to Delivered) and
    claws back commission in proportion. A payment the processor took is
    refunded through it too: the row is ``processing`` until it answers.
    """
    _require_manager(actor, "refund a payment")
    if not reason.strip():
        raise BillingError("Say why: the reason goes on the ledger.", field="reason")
    if amount is None or amount <= 0:
        raise BillingError("The amount must be more than zero.", field="amount")
    deal_id = Payment.objects.values_list("deal_id", flat=True).get(pk=payment_id)
    deal = _lock_deal(deal_id)
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if payment.status != PaymentStatus.CLEARED:
        raise BillingError(
            f"Only cleared money can be refunded; this payment is "
            f"{payment.get_status_display().lower()}."
        )
    left = refundable(payment)
    if amount > left:
        raise BillingError(
            f"That is more than is left to refund of this payment: "
            f"{settings.CURRENCY_SYMBOL}{left:,.2f}.",
            field="amount",
        )
    now = at or timezone.now()
    sender = _sender_for(payment)
    refund = Refund.objects.create(
        payment=payment,
        deal=deal,
        amount=amount,
        reason=reason.strip(),
        actor=actor,
        at=now,
        status=RefundStatus.PROCESSING if sender else RefundStatus.REFUNDED,
        settled_at=None if sender else now,
    )
    commission_refund_claw_back(refund=refund, deal=deal, actor=actor, at=now, last=amount == left)
    deal_sync_stage(deal=deal, actor=actor, at=now, taken_back="A payment was refunded")
    if sender is not None:
        transaction.on_commit(lambda: sender.send(refund.pk))
    return refund


@transaction.atomic
def refund_settle(*, refund_id: int, processor_ref: str, at: datetime | None = None) -> bool:
    """The processor gave the money back: ``processing`` → ``refunded``, with its id.

    A compare-and-set: the processor's answer, its ``charge.refunded`` event
    and the reconciliation scan may all report one refund; the first settles
    it, the others change nothing (False).
    """
    settled = Refund.objects.filter(pk=refund_id, status=RefundStatus.PROCESSING).update(
        status=RefundStatus.REFUNDED, settled_at=at or timezone.now(), processor_ref=processor_ref
    )
    return bool(settled)


@transaction.atomic
def refund_fail(*, refund_id: int, failure: str, at: datetime | None = None) -> bool:
    """The processor refused the refund: nothing went back, so it no longer counts.

    The deal's money and stage follow again, and the commission the refund
    clawed back is earned again. Compare-and-set like ``refund_settle``.
    """
    deal_id = Refund.objects.values_list("deal_id", flat=True).get(pk=refund_id)
    deal = _lock_deal(deal_id)
    now = at or timezone.now()
    failed = Refund.objects.filter(pk=refund_id, status=RefundStatus.PROCESSING).update(
        status=RefundStatus.FAILED, settled_at=now, failure=failure[:300]
    )
    if not failed:
        return False
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    commission_refund_restore(refund=refund, deal=deal, actor=None, at=now)
    deal_sync_stage(deal=deal, actor=None, at=now)
    return True
