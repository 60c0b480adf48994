"""Billing's own policy: commission, instalment schedules, accounting cut-offs.

Pure functions, testable with made-up figures. The terms policy (payment
options, standings, deposits, rounding) is the pipeline's: ``pipeline.terms``.
"""

import calendar
from datetime import date, timedelta
from decimal import Decimal

from pipeline.terms import ZERO, PaymentOption, money_round


def commission_for(base: Decimal, rate: Decimal) -> Decimal:
    """Commission on ``base`` cleared money at ``rate`` (0.10 = 10%), half up to the cent."""
    return money_round(base * rate)


def split_into_instalments(total: Decimal, count: int) -> list[Decimal]:
    """Split ``total`` into ``count`` instalments that add up to it to the cent.

    Each instalment is total / count rounded half up; the last one takes what
    rounding left over, so the plan always sums to the balance exactly.
    """
    if count < 1:
        raise ValueError("A plan has at least one instalment.")
    each = money_round(total / count)
    parts = [each] * (count - 1)
    return [*parts, total - sum(parts, ZERO)]


def instalment_schedule(
    total: Decimal, count: int, *, first_due: date, every_days: int
) -> list[tuple[date, Decimal]]:
    """A plan for ``total``: ``count`` instalments (split_into_instalments), the
    first due on ``first_due``, then one every ``every_days`` days."""
    return [
        (first_due + timedelta(days=every_days * index), amount)
        for index, amount in enumerate(split_into_instalments(total, count))
    ]


def next_cutoff(cutoff_day: int | None, today: date) -> date | None:
    """The customer's next accounting cut-off from ``today`` on (seed 001, tip 1).

    A cut-off day past the end of a short month falls on its last day.
    """
    if cutoff_day is None:
        return None
    year, month = today.year, today.month
    for _ in range(2):
        last = calendar.monthrange(year, month)[1]
        candidate = date(year, month, min(cutoff_day, last))
        if candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("unreachable: next month always has the day")  # pragma: no cover


def billing_refusal(deal, *, payment: bool = False) -> str | None:
    """Why this deal cannot be invoiced or charged now, or None (DOMAIN.md, "The audit").

    - A sale disputed at audit is off the billing path until its manager
      decides: no invoice, no payment, no card put on file or charged.
    - A billed sale (on file, invoice) is closed twice before it is billed: it
      is invoiced, or its card on file charged, only once its audit is
      confirmed. Money an invoice customer sends unasked (a deposit, an early
      check: ``payment=True``) is still recorded; an on-file deal's payment is
      a charge of its card, so it waits.
    """
    if deal.is_disputed:
        return (
            "The customer disputed this sale at audit: nothing is invoiced or charged "
            "until the manager decides."
        )
    if deal.audit_passed:
        return None
    if payment and deal.payment_option == PaymentOption.INVOICE:
        return None
    what = "invoiced" if deal.payment_option == PaymentOption.INVOICE else "charged"
    return (
        f"A billed sale is {what} only after its audit is confirmed: "
        "the auditor's call comes first."
    )


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def cutoff_advice(deal, lead_days: int) -> str | None:
    """The customer's accounting cut-off in words, for a deal that will be invoiced.

    "The customer's accounting needs invoices by day 15: after the audit, send
    it by the 12th." The invoice cut-off reminder falls ``lead_days`` before.
    """
    cutoff_day = deal.customer.accounting_cutoff_day
    if deal.payment_option != PaymentOption.INVOICE or cutoff_day is None:
        return None
    send_by = max(cutoff_day - lead_days, 1)
    when = "after the audit, send it" if not deal.audit_passed else "send it"
    return (
        f"The customer's accounting needs invoices by day {cutoff_day} of the month: "
        f"{when} by the {_ordinal(send_by)} (a reminder comes {lead_days} days before the cut-off)."
    )
