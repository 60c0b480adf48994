"""The customer's answers through their link (billing/links.py): two reminder kinds.

A customer who opens their link may answer "I've paid" (with a reference) or
"I'll pay on <date>". Each answer is a ``billing.CustomerResponse`` row, one per
unpaid invoice it is about. Neither is money ("it isn't a sale until you're
paid"): the rep must check that the money came, and a promise that passes
without cleared money is chased again.

1. ``customer_says_paid`` — "Customer says paid"
   - owner: the deal's rep (the invoice's deal, ``invoice__deal__rep``), at scan time;
   - created: for every ``CustomerResponse`` of kind ``paid`` made in the scan's
     window (``created_at`` in (since, horizon]) whose invoice is still not
     covered by cleared money (``Payment`` status cleared, summed per invoice)
     and not void;
   - occurrence: ``i<invoice id>@<UTC date of the answer>`` — one per invoice
     per day, however often the customer clicks (hover, don't smother);
   - due: at once (the answer's ``created_at``);
   - why: "<customer> says invoice <number> (<left to pay>) is paid, reference
     “<reference>”: check that the money came in — only cleared money counts."
   - gone: cleared money covers the invoice ("Paid: cleared money covers the
     invoice."); or the deal is closed (paid, lost or written off: the usual
     ``DEAL_CLOSED``). Otherwise the rep marks it done after checking.

2. ``promise_passed`` — "Payment promise passed"
   - owner: the deal's rep, at scan time;
   - created: for every ``CustomerResponse`` of kind ``promise`` whose
     ``promised_for`` + 1 day's morning (``REMINDERS_MORNING_HOUR`` in the rep's
     time zone) falls in the scan's window, whose invoice is still not
     covered by cleared money and not void, and which no later promise on
     the same invoice has replaced (a newer ``promise`` response, later
     ``created_at``, different ``promised_for``);
   - occurrence: ``i<invoice id>@<promised_for ISO date>``;
   - due: the morning after the promised day (a promise is not a payment: on
     the promised day itself the money may still arrive);
   - why: "<customer> promised to pay invoice <number> (<left to pay>) on
     <day>: the money has not cleared — chase again. A promise is not a payment."
   - gone: cleared money covers the invoice ("Paid: cleared money covers the
     invoice."); or the customer promised a new date for it ("The customer
     promised a new date."); or the deal is closed (``DEAL_CLOSED``).

Tests: tests/reminders/test_m14b_rules.py (they call ``reminders_scan``).
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    CharField,
    DecimalField,
    Exists,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat, TruncDate

from billing.models import CustomerResponse, Payment, PaymentStatus, ResponseKind
from reminders.models import ReminderKind
from reminders.rules.base import (
    REP,
    Gone,
    Rule,
    Window,
    day_text,
    morning_of,
    without_reminder,
)

ONE_DAY = timedelta(days=1)


def _money(amount) -> str:
    return f"{settings.CURRENCY_SYMBOL}{amount:,.2f}"


def _cleared_on_invoice():
    return Coalesce(
        Subquery(
            Payment.objects.filter(invoice=OuterRef("invoice_id"), status=PaymentStatus.CLEARED)
            .order_by()
            .values("invoice")
            .annotate(total=Sum("amount"))
            .values("total")
        ),
        Value(Decimal("0.00")),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )


def _occ(day_expression) -> Concat:
    """``i<invoice id>@<ISO date>``."""
    return Concat(
        Value("i"),
        Cast("invoice_id", CharField()),
        Value("@"),
        Cast(day_expression, CharField()),
        output_field=CharField(),
    )


def _responses(kind: str, deal_ids: list[int] | None) -> QuerySet:
    """Answers of a kind whose invoice is not void and not covered by cleared money."""
    rows = (
        CustomerResponse.objects.order_by()
        .filter(kind=kind, invoice__voided_at__isnull=True)
        .annotate(cleared=_cleared_on_invoice())
        .filter(cleared__lt=F("invoice__amount"))
    )
    return rows if deal_ids is None else rows.filter(invoice__deal_id__in=deal_ids)


_ROW = {
    "deal_pk": F("invoice__deal_id"),
    "rep_pk": F("invoice__deal__rep_id"),
    "manager_pk": F("invoice__deal__rep__manager_id"),
    "tz": F("invoice__deal__rep__time_zone"),
    "number": F("invoice__number"),
    "amount": F("invoice__amount"),
    "customer": F("invoice__deal__customer__name"),
}


def _invoice_name(row: dict) -> str:
    return f"invoice {settings.CLEARED_INVOICE_PREFIX}{row['number']:05d}"


# --- 1. the customer says they paid ------------------------------------------------


def _paid_day():
    return TruncDate("created_at")


def _find_says_paid(window: Window, deal_ids: list[int] | None) -> QuerySet:
    rows = (
        _responses(ResponseKind.PAID, deal_ids)
        .filter(created_at__gt=window.since, created_at__lte=window.horizon)
        .annotate(occ=_occ(_paid_day()))
    )
    return without_reminder(rows, ReminderKind.CUSTOMER_SAYS_PAID, "invoice__deal_id").values(
        "occ", "created_at", "reference", "cleared", **_ROW
    )


def _says_paid_why(row: dict) -> str:
    reference = (row["reference"] or "")[:60]
    quoted = f", reference “{reference}”" if reference else ", no reference given"
    return (
        f"{row['customer']} says {_invoice_name(row)} "
        f"({_money(row['amount'] - row['cleared'])}) is paid{quoted}: check that the money "
        "came in — only cleared money counts."
    )


def _answer_paid(kind: str, day_expression):
    """Gone: the invoice an open reminder of ``kind`` is about is covered by cleared money."""

    def when() -> Exists:
        answers = (
            CustomerResponse.objects.filter(
                kind=kind, invoice__deal_id=OuterRef("deal_id"), invoice__voided_at__isnull=True
            )
            .annotate(occ=_occ(day_expression()), cleared=_cleared_on_invoice())
            .filter(occ=OuterRef("occurrence"), cleared__gte=F("invoice__amount"))
        )
        return Exists(answers)

    return when


CUSTOMER_SAYS_PAID = Rule(
    kind=ReminderKind.CUSTOMER_SAYS_PAID,
    owner=REP,
    find=_find_says_paid,
    due=lambda row: row["created_at"],
    why=_says_paid_why,
    gone=(
        Gone(
            _answer_paid(ResponseKind.PAID, _paid_day),
            "Paid: cleared money covers the invoice.",
        ),
    ),
)


# --- 2. the promised day passed without the money ------------------------------------


def _promise_day():
    return F("promised_for")


def _replaced():
    """A later promise on the same invoice, for another day, replaces this one."""
    return Exists(
        CustomerResponse.objects.filter(
            kind=ResponseKind.PROMISE,
            invoice_id=OuterRef("invoice_id"),
            created_at__gt=OuterRef("created_at"),
        ).exclude(promised_for=OuterRef("promised_for"))
    )


def _find_promise_passed(window: Window, deal_ids: list[int] | None) -> QuerySet:
    rows = (
        _responses(ResponseKind.PROMISE, deal_ids)
        .filter(window.mornings("promised_for", lag=ONE_DAY, rep="invoice__deal__rep"))
        .filter(~_replaced())
        .annotate(occ=_occ(_promise_day()))
    )
    return without_reminder(rows, ReminderKind.PROMISE_PASSED, "invoice__deal_id").values(
        "occ", "promised_for", "cleared", **_ROW
    )


def _promise_why(row: dict) -> str:
    return (
        f"{row['customer']} promised to pay {_invoice_name(row)} "
        f"({_money(row['amount'] - row['cleared'])}) on {day_text(row['promised_for'])}: "
        "the money has not cleared — chase again. A promise is not a payment."
    )


def _promise_replaced() -> Exists:
    answers = (
        CustomerResponse.objects.filter(
            kind=ResponseKind.PROMISE, invoice__deal_id=OuterRef("deal_id")
        )
        .annotate(occ=_occ(_promise_day()))
        .filter(occ=OuterRef("occurrence"))
        .filter(_replaced())
    )
    return Exists(answers)


PROMISE_PASSED = Rule(
    kind=ReminderKind.PROMISE_PASSED,
    owner=REP,
    find=_find_promise_passed,
    due=lambda row: morning_of(row["promised_for"] + ONE_DAY, row["tz"]),
    why=_promise_why,
    gone=(
        Gone(
            _answer_paid(ResponseKind.PROMISE, _promise_day),
            "Paid: cleared money covers the invoice.",
        ),
        Gone(_promise_replaced, "The customer promised a new date."),
    ),
)


def m14b_rules() -> tuple[Rule, ...]:
    return (CUSTOMER_SAYS_PAID, PROMISE_PASSED)
