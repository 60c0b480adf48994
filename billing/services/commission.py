"""Commission: the rate in force for a rep, a manager's new rate, and the entries
earned on cleared money and clawed back when it is taken back."""

import zoneinfo
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import (
    CommissionEntry,
    CommissionKind,
    CommissionRate,
    Payment,
    Refund,
)
from billing.policy import commission_for
from billing.services.errors import BillingError, NotAllowed
from pipeline.access import manages_rep
from pipeline.models import Deal, User
from pipeline.terms import ZERO


def _rep_day(rep: User, at: datetime) -> date:
    """The day ``at`` falls on for the rep: rates start on the rep's own midnight."""
    return at.astimezone(zoneinfo.ZoneInfo(rep.time_zone)).date()


def commission_rate_for(rep: User, at: datetime | None = None) -> Decimal:
    """The rate in force for the rep at ``at`` (now by default): the last one a
    manager set effective on or before that day, else ``CLEARED_COMMISSION_RATE``."""
    return CommissionRate.in_force(rep.pk, _rep_day(rep, at or timezone.now()))


def commission_rate_set(
    *, manager: User, rep: User, percent: Decimal, effective_from: date
) -> CommissionRate:
    """Set a rep's commission rate from a day on (DOMAIN.md, Commission).

    A manager sets the rate of a rep on their own team, as a percent from 0 to
    100, effective today or later (the rep's today). Commission already earned
    keeps the rate it was earned at; commission earned from ``effective_from``
    on uses this one. Raises NotAllowed for someone else's rep, BillingError
    (with the field) for a rate or a day out of bounds.
    """
    if not manages_rep(manager, rep):
        raise NotAllowed("Only the rep's own manager can set their commission rate.")
    if percent.is_nan() or not Decimal("0") <= percent <= Decimal("100"):
        raise BillingError("A rate from 0 to 100 %.", field="percent")
    if percent != percent.quantize(Decimal("0.01")):
        raise BillingError("At most two decimals, e.g. 12.50.", field="percent")
    if effective_from < _rep_day(rep, timezone.now()):
        raise BillingError(
            "From today or a later day: commission already earned does not change.",
            field="effective_from",
        )
    return CommissionRate.objects.create(
        rep=rep,
        rate=percent / 100,
        effective_from=effective_from,
        set_by=manager,
        set_at=timezone.now(),
    )


# --- Commission -------------------------------------------


def commission_earn(
    *, payment: Payment, deal: Deal, actor: User | None, at: datetime
) -> CommissionEntry:
    """Cleared money earns the deal's rep commission at the rate in force when it cleared."""
    rate = commission_rate_for(deal.rep, at)
    return CommissionEntry.objects.create(
        rep=deal.rep,
        deal=deal,
        payment=payment,
        kind=CommissionKind.EARNED,
        base=payment.amount,
        rate=rate,
        amount=commission_for(payment.amount, rate),
        at=at,
        actor=actor,
    )


def _still_earned(payment: Payment) -> Decimal:
    """The commission a payment still earns: earned, less what refunds took back."""
    entries = CommissionEntry.objects.filter(payment=payment)
    return entries.aggregate(total=Coalesce(Sum("amount"), ZERO))["total"]


def commission_claw_back(
    *, payment: Payment, deal: Deal, actor: User | None, at: datetime
) -> CommissionEntry | None:
    """Take back the commission a bounced or charged-back payment still earned.

    "It is not a sale until it is paid" (DOMAIN.md, Commission): a clawback of
    the base still cleared (the payment less its refunds) and of what its
    commission still is, negative, for the rep who earned it. None if the
    payment never cleared, so earned nothing.
    """
    earned = CommissionEntry.objects.filter(payment=payment, kind=CommissionKind.EARNED).first()
    if earned is None:
        return None
    base = CommissionEntry.objects.filter(payment=payment).aggregate(
        total=Coalesce(Sum("base"), ZERO)
    )["total"]
    return CommissionEntry.objects.create(
        rep=earned.rep,
        deal=deal,
        payment=payment,
        kind=CommissionKind.CLAWBACK,
        base=-base,
        rate=earned.rate,
        amount=-_still_earned(payment),
        at=at,
        actor=actor,
    )


def commission_refund_claw_back(
    *, refund: Refund, deal: Deal, actor: User | None, at: datetime, last: bool
) -> CommissionEntry | None:
    """A refund takes back commission in proportion to the money given back.

    Refunding 400.00 of a 1,000.00 payment that earned 100.00 takes back 40.00,
    at the rate it was earned at; the refund that gives back the last of the
    payment (``last``) takes back all that is left, so rounding never leaves a
    cent earned on money returned. None if the payment earned nothing.
    """
    earned = CommissionEntry.objects.filter(
        payment=refund.payment, kind=CommissionKind.EARNED
    ).first()
    if earned is None:
        return None
    left = _still_earned(refund.payment)
    amount = left if last else min(left, commission_for(refund.amount, earned.rate))
    return CommissionEntry.objects.create(
        rep=earned.rep,
        deal=deal,
        payment=refund.payment,
        refund=refund,
        kind=CommissionKind.REFUND,
        base=-refund.amount,
        rate=earned.rate,
        amount=-amount,
        at=at,
        actor=actor,
    )


def commission_refund_restore(
    *, refund: Refund, deal: Deal, actor: User | None, at: datetime
) -> CommissionEntry | None:
    """A refund the processor refused gave nothing back: its clawback is earned again.

    Not once the payment was bounced or charged back since: that clawback took back
    everything the payment still earned and every cent of its base, so nothing of it
    is cleared any more (the refused refund's money left with the charge-back).
    """
    clawed = CommissionEntry.objects.filter(refund=refund, kind=CommissionKind.REFUND).first()
    if clawed is None:
        return None
    taken_back = CommissionEntry.objects.filter(
        payment=refund.payment, kind=CommissionKind.CLAWBACK
    ).exists()
    if taken_back:
        return None
    return CommissionEntry.objects.create(
        rep=clawed.rep,
        deal=deal,
        payment=refund.payment,
        refund=refund,
        kind=CommissionKind.REFUND_FAILED,
        base=-clawed.base,
        rate=clawed.rate,
        amount=-clawed.amount,
        at=at,
        actor=actor,
    )
