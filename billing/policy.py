"""Billing's own policy: commission, instalment schedules, accounting cut-offs.

Pure functions, testable with made-up figures. The terms policy (payment
options, standings, deposits, rounding) is the pipeline's: ``pipeline.terms``.
"""

import calendar
from datetime import date, timedelta
from decimal import Decimal

from pipeline.terms import ZERO, money_round


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
