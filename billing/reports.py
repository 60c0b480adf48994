"""Reports on the ledger: cleared money in a period (``cleared_money_moves``), a month's
promised, pending and cleared money and the commission earned, per rep and for a team.
Sums are done in SQL."""

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import DateTimeField, F, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import (
    CommissionEntry,
    Payment,
    PaymentStatus,
)
from pipeline.compiled import Compiled, InBatch, Slot
from pipeline.models import Deal, not_disputed_at_audit
from pipeline.terms import (
    ZERO,
    money_sum,
)

# --- Cleared money in a period -------------------------------------------


def cleared_money_moves(start: datetime, end: datetime | None = None) -> QuerySet:
    """The moves of cleared money from ``start`` (to ``end``, when given), as rows whose
    ``base`` is the money and ``at`` the moment: money that cleared (positive), and
    money that left again after clearing (negative) — a bounce, a charge-back, a refund
    (in full or in part, counted from the moment it is written, even while the
    processor is still sending it). A refund the processor refused comes back
    (positive) the moment it failed.

    The one definition of "cleared money in a period, less what went back" (DOMAIN.md,
    Commission: it is not a sale until it is paid): each move counts in the period it
    happened, so money given back lowers the period it left, not the one it had cleared
    in, and a period's figure, once read or paid out as commission, does not change
    afterwards. The rows are the commission
    ledger's (``CommissionEntry``: every clearing and every taking back writes one, in
    the same transaction); sum them with ``cleared_money_sum`` and group them as the
    figure needs — a rep's month (``team_month_figures``), the board's weeks
    (``dashboards.charts.promised_vs_cleared_by_week``).
    """
    moves = CommissionEntry.objects.filter(at__gte=start)
    return moves if end is None else moves.filter(at__lt=end)


def cleared_money_sum() -> Coalesce:
    """The aggregate over ``cleared_money_moves``: their money, 0.00 when none."""
    return money_sum("base")


# --- Commission -------------------------------------------


@dataclass(frozen=True)
class MonthFigures:
    """A rep's month (DOMAIN.md, Commission: it is not a sale until it is paid).

    promised: deals promised in the month; pending: payments recorded in the
    month and still not cleared; cleared: money cleared in the month, less
    what bounced or was charged back after clearing (the commission ledger's
    base, refunds taken off in the month they were given: ``cleared_money_moves``);
    earned: commission earned in the month, less clawbacks.
    """

    promised: Decimal = ZERO
    pending: Decimal = ZERO
    cleared: Decimal = ZERO
    earned: Decimal = ZERO


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The first moment of ``month``'s month and of the next, in the current time zone."""
    first = month.replace(day=1)
    days = calendar.monthrange(first.year, first.month)[1]
    start = timezone.make_aware(datetime(first.year, first.month, 1))
    end = timezone.make_aware(datetime.combine(first + timedelta(days=days), datetime.min.time()))
    return start, end


def team_month_figures(
    rep_ids, month: date, *, with_pending: bool = True
) -> dict[int, MonthFigures]:
    """``MonthFigures`` for each rep id: three grouped queries, whatever the team's size.

    Credited to whoever sold the deal (``Deal.sold_by``), and commission to the
    rep its entry names: a handover moves neither (issue 20).

    ``with_pending=False`` skips the pending sum (two queries) where a page
    shows only promised vs cleared, like the Not paid yet board.
    """
    start, end = month_bounds(month)
    month_of = {"reps": list(rep_ids), "start": start, "end": end}
    promised = dict(_PROMISED.rows(**month_of))
    pending = dict(_PENDING.rows(**month_of)) if with_pending else {}
    ledger = {rep_id: (cleared, earned) for rep_id, cleared, earned in _LEDGER.rows(**month_of)}
    return {
        rep_id: MonthFigures(
            promised=promised.get(rep_id, ZERO),
            pending=pending.get(rep_id, ZERO),
            cleared=ledger.get(rep_id, (ZERO, ZERO))[0],
            earned=ledger.get(rep_id, (ZERO, ZERO))[1],
        )
        for rep_id in month_of["reps"]
    }


# The month's three sums, each built once (``pipeline.compiled``): every page with a
# team's figures (the board, the team page) runs their SQL, not the ORM's building.
_START, _END = Slot("start", DateTimeField()), Slot("end", DateTimeField())
_PROMISED = Compiled(
    lambda: (
        Deal.objects.filter(InBatch(F("sold_by_id"), "reps"))
        .filter(promised_at__gte=_START, promised_at__lt=_END)
        .filter(not_disputed_at_audit())
        .order_by()
        .values_list("sold_by_id")
        .annotate(total=money_sum("amount"))
    )
)
_PENDING = Compiled(
    lambda: (
        Payment.objects.filter(InBatch(F("deal__sold_by_id"), "reps"))
        .filter(status=PaymentStatus.PENDING, recorded_at__gte=_START, recorded_at__lt=_END)
        .filter(not_disputed_at_audit("deal__"))
        .order_by()
        .values_list("deal__sold_by_id")
        .annotate(total=money_sum("amount"))
    )
)
_LEDGER = Compiled(
    lambda: (
        cleared_money_moves(_START, _END)
        .filter(InBatch(F("rep_id"), "reps"))
        .filter(not_disputed_at_audit("deal__"))
        .order_by()
        .values_list("rep_id")
        .annotate(cleared=cleared_money_sum(), earned=money_sum("amount"))
    )
)


def rep_month_figures(rep, month: date | None = None) -> MonthFigures:
    """Promised / pending / cleared / earned for one rep, in ``month``'s month (default: now)."""
    month = month or timezone.localdate()
    return team_month_figures([rep.pk], month)[rep.pk]


def commission_ledger(rep_ids, month: date):
    """The commission entries behind the month's figures, newest first."""
    start, end = month_bounds(month)
    return (
        CommissionEntry.objects.filter(rep_id__in=list(rep_ids), at__gte=start, at__lt=end)
        .filter(not_disputed_at_audit("deal__"))
        .select_related("rep", "deal", "deal__customer", "payment")
        .order_by("-at", "-id")
    )
