"""Payment plans: a balance split into dated instalments."""

from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.models import (
    Instalment,
    PaymentPlan,
)
from billing.policy import instalment_schedule
from billing.services.errors import BillingError, _deal_changed, _lock_deal, _refuse_closed
from billing.services.standing import live_money
from pipeline.models import User
from pipeline.services import terms_change_by_manager
from pipeline.terms import ZERO
from pipeline.terms_freeze import TermsFrozen, TermsReasonMissing, terms_frozen_by

# --- Payment plans -------------------------------------------


@transaction.atomic
def payment_plan_create(
    *,
    deal_id: int,
    created_by: User,
    instalments: list[tuple[date, Decimal]] | None = None,
    count: int | None = None,
    first_due: date | None = None,
    every_days: int = 30,
    note: str = "",
    today: date | None = None,
) -> PaymentPlan:
    """Split the deal's open balance into dated instalments (seed 001, tip 3).

    The instalments must add up to the open balance exactly, each more than
    zero, due on distinct dates from today on; a deal has one plan. Once the
    audit has frozen the terms, only the rep's manager sets one, with the reason
    in ``note`` (``pipeline.services.terms_change_by_manager``). Without
    ``instalments``, the balance read under the deal's lock is split into
    ``count`` from ``first_due``, every ``every_days`` (``instalment_schedule``).
    """
    deal = _lock_deal(deal_id)
    _refuse_closed(deal, "it cannot have a payment plan")
    frozen = bool(terms_frozen_by(deal))
    if PaymentPlan.objects.filter(deal=deal).exists():
        raise BillingError("This deal has a payment plan already.")
    balance = deal.amount - live_money(deal.pk)
    if balance <= 0:
        raise BillingError("Nothing is left to pay: there is no balance to split.")
    if instalments is None:
        if not count or first_due is None:
            raise BillingError("A plan has at least one instalment.", field="count")
        instalments = instalment_schedule(
            balance, count, first_due=first_due, every_days=every_days
        )
    today = today or timezone.localdate()
    dates = [due for due, _ in instalments]
    if not instalments:
        raise BillingError("A plan has at least one instalment.", field="count")
    if any(amount <= 0 for _, amount in instalments):
        raise BillingError("Too many instalments for this balance.", field="count")
    if min(dates) < today:
        raise BillingError("The first instalment can't be due in the past.", field="first_due")
    if dates != sorted(set(dates)):
        raise BillingError("Each instalment needs its own, later due date.", field="first_due")
    total = sum((amount for _, amount in instalments), ZERO)
    if total != balance:
        raise BillingError(
            f"The instalments add up to {total:,.2f}; the open balance is {balance:,.2f}.",
            field="count",
        )
    if frozen:
        # A plan is part of the terms the audit confirmed (issue 20): once they are
        # frozen, the rep's manager sets it, with why, on the deal's timeline.
        first, last = instalments[0], instalments[-1]
        try:
            terms_change_by_manager(
                deal=deal,
                manager=created_by,
                label="Payment plan",
                before="none: the balance due at once",
                after=f"{len(instalments)} instalments of {first[1]:,.2f}"
                f"{'' if first[1] == last[1] else f' (the last {last[1]:,.2f})'}, "
                f"{first[0]:%-d %b %Y} to {last[0]:%-d %b %Y}",
                reason=note,
            )
        except TermsFrozen as exc:
            raise BillingError(str(exc)) from exc
        except TermsReasonMissing as exc:
            raise BillingError(str(exc), field="note") from exc
    plan = PaymentPlan.objects.create(deal=deal, created_by=created_by, note=note)
    Instalment.objects.bulk_create(
        Instalment(plan=plan, sequence=number, due_date=due, amount=amount)
        for number, (due, amount) in enumerate(instalments, start=1)
    )
    # The instalments' "payment due" reminders, now rather than at the next scan.
    _deal_changed(deal.pk, created_by)
    return plan
