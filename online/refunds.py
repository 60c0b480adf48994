"""Refunds of payments the processor took: the ledger's refund row (billing) is written
first, then sent to the processor with the row as the idempotency key, so a crash in
between loses nothing and a resend never gives the money back twice.

The processor's answer settles the row (``billing.services.refund_settle`` or
``refund_fail``); so do its ``charge.refunded`` event (``refunds_from_charge``) and
the reconciliation scan (``refunds_reconcile``), which sends every refund still
processing again: the same key makes the processor answer with the refund it
already made.
"""

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from billing import services as billing
from billing.models import Payment, Refund, RefundStatus
from online import processor
from online.models import IntentPayment

# A refund the processor keeps refusing (it cannot be reached, or says no) for this
# long is marked failed: it counts again and the manager sees why.
GIVE_UP_AFTER = timedelta(hours=24)


def processor_took(payment: Payment) -> bool:
    """The payment came through the processor (a pay link or a card on file charged)."""
    return IntentPayment.objects.filter(payment=payment).exists()


def refund_key(refund_id: int) -> str:
    """The idempotency key of a refund at the processor: the ledger row's id."""
    return f"cleared-refund-{refund_id}"


def refund_apply(refund_id: int, found) -> str:
    """Settle the ledger's refund from the processor's refund object; return its status."""
    status = found.status
    if status == "succeeded":
        billing.refund_settle(refund_id=refund_id, processor_ref=found.id)
    elif status in ("failed", "canceled"):
        reason = getattr(found, "failure_reason", None) or status
        billing.refund_fail(refund_id=refund_id, failure=f"The processor refused: {reason}")
    return status


def refund_send(refund_id: int, now: datetime | None = None) -> str:
    """Send a processing refund to the processor (again, if need be) and settle it.

    Returns the outcome: "succeeded", "pending" (the processor will say,
    by its event or the next scan), "failed", "unreachable" (tried again by
    the scan) or "settled" (nothing left to do).
    """
    refund = (
        Refund.objects.filter(pk=refund_id, status=RefundStatus.PROCESSING)
        .select_related("payment__processor_attempt__intent")
        .first()
    )
    if refund is None:
        return "settled"
    intent = refund.payment.processor_attempt.intent
    try:
        found = processor.refund_create(
            intent_id=intent.processor_id,
            amount=refund.amount,
            idempotency_key=refund_key(refund.pk),
            metadata={"cleared_refund": str(refund.pk)},
        )
    except processor.ProcessorError as exc:
        if refund.at < (now or timezone.now()) - GIVE_UP_AFTER:
            billing.refund_fail(refund_id=refund.pk, failure=str(exc))
            return "failed"
        return "unreachable"
    return refund_apply(refund.pk, found)


def refunds_from_charge(charge: dict) -> int:
    """The processor's ``charge.refunded`` event: settle the refunds it lists that
    Cleared made (``metadata.cleared_refund``). Returns how many it settled."""
    settled = 0
    for each in (charge.get("refunds") or {}).get("data") or []:
        refund_id = str((each.get("metadata") or {}).get("cleared_refund", ""))
        if refund_id.isdigit() and each.get("status") == "succeeded":
            settled += billing.refund_settle(refund_id=int(refund_id), processor_ref=each["id"])
    return settled


def refunds_reconcile(now: datetime | None = None) -> int:
    """Send again every refund still processing after ``ONLINE_RECONCILE_AFTER_SECONDS``
    (the worker died after the row committed, or the processor was down)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.ONLINE_RECONCILE_AFTER_SECONDS)
    ids = Refund.objects.filter(status=RefundStatus.PROCESSING, at__lt=stale).values_list(
        "pk", flat=True
    )
    return sum(refund_send(refund_id, now) != "unreachable" for refund_id in ids[:100])


# --- tasks (thin) -------------------------------------------


@shared_task(name="online.refund_send")
def refund_send_task(refund_id: int) -> str:
    return refund_send(refund_id)


@shared_task(name="online.refunds_reconcile")
def refunds_reconcile_task() -> int:
    return refunds_reconcile()


def _enqueue_send(refund_id: int) -> None:
    refund_send_task.delay(refund_id)


def register() -> None:
    """Tell billing that refunds of the processor's payments go back through it."""
    billing.refund_sender_register(billing.RefundSender(owns=processor_took, send=_enqueue_send))
