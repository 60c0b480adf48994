"""Billing's own policy: commission, instalment schedules, accounting cut-offs.

Pure functions, testable with made-up figures. The terms policy (payment
options, standings, deposits, rounding) is the pipeline's: ``pipeline.terms``.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

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


def cutoff_in(year: int, month: int, cutoff_day: int) -> date:
    """The cut-off's date in that month: a day past a short month's end falls on its last."""
    return date(year, month, min(cutoff_day, calendar.monthrange(year, month)[1]))


def next_cutoff(cutoff_day: int | None, today: date) -> date | None:
    """The customer's next accounting cut-off from ``today`` on (seed 001, tip 1)."""
    if cutoff_day is None:
        return None
    this_month = cutoff_in(today.year, today.month, cutoff_day)
    if this_month >= today:
        return this_month
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return cutoff_in(year, month, cutoff_day)


def cutoff_missed(issue_date: date, cutoff_day: int | None) -> bool:
    """True when ``issue_date`` is past the customer's cut-off of its month."""
    if cutoff_day is None:
        return False
    return issue_date > cutoff_in(issue_date.year, issue_date.month, cutoff_day)


@dataclass(frozen=True)
class InvoiceDeadline:
    """When the invoice must go: ``send_by``, ``lead_days`` before the customer's next
    cut-off (``cutoff``), so it is in their accounts before their payment run.

    ``send_by`` may fall in the month before the cut-off (a cut-off on the 2nd,
    three days' lead: the 30th or 29th). The invoice cut-off reminder falls due
    the morning of ``send_by``; the deal's money note and the invoice page name
    the same day. Once ``send_by`` has passed and the cut-off has not, the
    invoice is late but can still make it: send it today.
    """

    cutoff: date
    send_by: date

    def is_late(self, today: date) -> bool:
        return self.send_by < today

    def advice(self, today: date) -> str:
        """ "send it by 29 Nov", or "send it today" once that day has passed."""
        if self.send_by <= today:
            return "send it today"
        return f"send it by {self.send_by:%-d %b}"


def invoice_deadline(
    cutoff_day: int | None, today: date, lead_days: int | None = None
) -> InvoiceDeadline | None:
    """When the invoice must go for a customer with a cut-off on ``cutoff_day`` of the
    month, seen from ``today``: the next cut-off not yet past, and the day
    ``lead_days`` (``REMINDERS_INVOICE_CUTOFF_DAYS``) before it. The one definition
    of the deadline: the money note, the invoice page and the reminder use it."""
    cutoff = next_cutoff(cutoff_day, today)
    if cutoff is None:
        return None
    lead = settings.REMINDERS_INVOICE_CUTOFF_DAYS if lead_days is None else lead_days
    return InvoiceDeadline(cutoff=cutoff, send_by=cutoff - timedelta(days=lead))


def left_to_invoice(amount: Decimal, invoiced: Decimal, paid_without_invoice: Decimal) -> Decimal:
    """What is left to invoice on a deal: its amount less the invoices not void and
    the money in (pending or cleared) paid without an invoice, such as a deposit.

    A $1,500 deal with a $300 deposit in has $1,200 left to invoice. The one
    definition: ``billing.services.invoiceable_money``, the deal's money panel
    (``DealMoney.uninvoiced``) and the invoice cut-off reminder use it.
    """
    return amount - invoiced - paid_without_invoice


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


def cutoff_advice(deal, today: date | None = None) -> str | None:
    """The customer's accounting cut-off in words, for a deal that will be invoiced:
    "The customer's accounting needs invoices by day 15 of the month: after the
    audit, send it by 12 Dec (for the 15 Dec cut-off; a reminder comes that
    morning)." The day is ``invoice_deadline``'s, never one already past."""
    cutoff_day = deal.customer.accounting_cutoff_day
    if deal.payment_option != PaymentOption.INVOICE or cutoff_day is None:
        return None
    today = today or timezone.localdate()
    deadline = invoice_deadline(cutoff_day, today)
    after = "after the audit, " if not deal.audit_passed else ""
    reminder = "" if deadline.send_by <= today else "; a reminder comes that morning"
    return (
        f"The customer's accounting needs invoices by day {cutoff_day} of the month: "
        f"{after}{deadline.advice(today)} (for the {deadline.cutoff:%-d %b} cut-off{reminder})."
    )
