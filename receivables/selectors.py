"""Reads for asking the customer for money: the chase's effect, the customer's
statement and open invoices, days sales outstanding. Sums are done in SQL."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    F,
    OuterRef,
    Q,
)
from django.utils import timezone

from billing.models import (
    CreditNote,
    Invoice,
    Payment,
    PaymentStatus,
    paid_against,
)
from pipeline.access import team_sellers
from pipeline.models import Customer
from pipeline.terms import (
    ZERO,
)
from receivables.chase import rung_label
from receivables.models import CustomerEmail, EmailKind, EmailState

# --- The chase's effect -------------------------------------------


@dataclass(frozen=True)
class ChaseEffect:
    """Of the money overdue when a chase email went, how much came in within a week."""

    label: str
    emails: int
    owed: Decimal
    came_in: Decimal

    @property
    def share(self) -> int | None:
        """Percent, rounded; None when nothing was owed."""
        if not self.owed:
            return None
        return int((self.came_in * 100 / self.owed).quantize(Decimal("1")))


def chase_effect(reps, *, since: datetime, week: timedelta = timedelta(days=7)) -> dict:
    """The share of overdue money that came in within a week of a chase email, per rung.

    Per email: the money still owed on the invoice when it went (its amount
    less what had cleared on it before, net of what was refunded before:
    billing's ``paid_against`` as of the email's ``sent_at``) and the payments
    recorded (cleared since) in the week after it — up to the next chase of
    the same invoice, so no payment counts twice. The total counts each
    invoice's debt once, at its first chase. Two queries.
    """
    emails = list(
        CustomerEmail.objects.filter(
            kind=EmailKind.CHASE, state=EmailState.SENT, deal__rep__in=reps, sent_at__gte=since
        )
        .select_related("invoice")
        # What had cleared on the invoice when the email went, less what was refunded by then.
        .annotate(
            paid_when_sent=paid_against("invoice", of="invoice_id", before=OuterRef("sent_at"))
        )
        .order_by("invoice_id", "sent_at", "id")
    )
    payments: dict[int, list] = {}
    for invoice_id, amount, recorded_at in Payment.objects.filter(
        invoice_id__in={email.invoice_id for email in emails}, status=PaymentStatus.CLEARED
    ).values_list("invoice_id", "amount", "recorded_at"):
        payments.setdefault(invoice_id, []).append((amount, recorded_at))
    per_rung: dict[int, list[Decimal]] = {}
    total_owed = total_in = ZERO
    for index, email in enumerate(emails):
        owed = max(email.invoice.amount - email.paid_when_sent, ZERO)
        following = emails[index + 1] if index + 1 < len(emails) else None
        end = email.sent_at + week
        if following is not None and following.invoice_id == email.invoice_id:
            end = min(end, following.sent_at)
        on_invoice = payments.get(email.invoice_id, [])
        came = sum((a for a, recorded in on_invoice if email.sent_at <= recorded < end), ZERO)
        came = min(came, owed)
        figures = per_rung.setdefault(email.rung, [0, ZERO, ZERO])
        figures[0] += 1
        figures[1] += owed
        figures[2] += came
        first = index == 0 or emails[index - 1].invoice_id != email.invoice_id
        total_owed += owed if first else ZERO
        total_in += came
    rows = [
        ChaseEffect(rung_label(rung), count, owed, came)
        for rung, (count, owed, came) in sorted(per_rung.items())
    ]
    total = ChaseEffect("All rungs", len(emails), total_owed, min(total_in, total_owed))
    return {"rungs": rows, "total": total}


# --- The customer's statement -------------------------------------------

# A statement lists the payments received in this many days before its date.
STATEMENT_PAYMENT_DAYS = 90
AGING_BUCKETS = (
    ("Not yet due", None, 0),
    ("1–30 days late", 1, 30),
    ("31–60 days late", 31, 60),
    ("61–90 days late", 61, 90),
    ("Over 90 days late", 91, None),
)


def aging_bucket(days_late: int) -> str:
    """The AGING_BUCKETS label for an invoice so many days past its due date."""
    for label, low, high in AGING_BUCKETS:
        if low is None:
            if days_late <= 0:
                return label
        elif days_late >= low and (high is None or days_late <= high):
            return label
    raise ValueError(days_late)


def _day_end(day: date) -> datetime:
    """The first moment after ``day``, in the current time zone."""
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), datetime.min.time()))


def open_invoices(customer_id: int, *, deals=None, as_of: date | None = None):
    """A customer's invoices not void and not covered by cleared money (at the end of
    ``as_of``, default now), with ``cleared`` and ``pending`` against each, due first.

    ``deals`` narrows them to deals someone may see (a rep's statement shows
    their own deals only: pipeline.access).
    """
    before = _day_end(as_of) if as_of is not None else None
    invoices = Invoice.objects.filter(deal__customer_id=customer_id, voided_at__isnull=True)
    if deals is not None:
        invoices = invoices.filter(deal__in=deals)
    if as_of is not None:
        invoices = invoices.filter(issue_date__lte=as_of)
    return (
        invoices.annotate(
            cleared=paid_against("invoice", before=before),
            pending=paid_against(
                "invoice", status=PaymentStatus.PENDING, before=before, moment="recorded_at"
            ),
        )
        .filter(cleared__lt=F("amount"))
        .order_by("due_date", "number")
    )


def statement_context(customer, as_of: date, *, deals=None) -> dict:
    """Everything a customer's statement shows at the end of ``as_of``: the page, its
    PDF and the customer's link all render ``receivables/statement.html`` from this.

    - ``invoices``: open invoices (not void, cleared money short of the amount),
      each with ``outstanding`` (amount less cleared), ``pending`` (received,
      not cleared yet: it still counts as owed), ``days_late`` and ``bucket``;
    - ``payments``: money received on the customer's deals in the
      ``STATEMENT_PAYMENT_DAYS`` days up to ``as_of``, any status, oldest first;
    - ``total_due``, ``overdue``, ``pending`` and ``aging`` (the outstanding
      money by days past due, ``AGING_BUCKETS``).

    - ``credit_notes``: the credit notes of invoices voided up to ``as_of``.

    ``deals`` narrows the statement to the deals a person may see. Three queries.
    """
    invoices = list(
        open_invoices(customer.pk, deals=deals, as_of=as_of).select_related("deal", "deal__rep")
    )
    aging = {label: ZERO for label, _, _ in AGING_BUCKETS}
    total_due = overdue = pending = ZERO
    for invoice in invoices:
        invoice.outstanding = invoice.amount - invoice.cleared
        invoice.days_late = max((as_of - invoice.due_date).days, 0)
        invoice.state = invoice.state_for(invoice.cleared)
        invoice.bucket = aging_bucket(invoice.days_late)
        aging[invoice.bucket] += invoice.outstanding
        total_due += invoice.outstanding
        pending += invoice.pending
        if invoice.days_late:
            overdue += invoice.outstanding
    since = as_of - timedelta(days=STATEMENT_PAYMENT_DAYS)
    payments = Payment.objects.filter(
        deal__customer_id=customer.pk,
        recorded_at__gte=_day_end(since - timedelta(days=1)),
        recorded_at__lt=_day_end(as_of),
    )
    if deals is not None:
        payments = payments.filter(deal__in=deals)
    credit_notes = CreditNote.objects.filter(
        invoice__deal__customer_id=customer.pk, issued_at__lt=_day_end(as_of)
    )
    if deals is not None:
        credit_notes = credit_notes.filter(invoice__deal__in=deals)
    return {
        "customer": customer,
        "as_of": as_of,
        "invoices": invoices,
        "payments": list(payments.select_related("invoice").order_by("recorded_at", "id")),
        "payments_since": since,
        # Voided invoices and the credit that cancels each (billing.models.credit_notes).
        "credit_notes": list(credit_notes.select_related("invoice").order_by("number")),
        "total_due": total_due,
        "overdue": overdue,
        "pending": pending,
        "aging": [(label, aging[label]) for label, _, _ in AGING_BUCKETS],
        "pay_to": pay_to(),
    }


def invoice_for_customer(invoice_id: int, today: date) -> tuple[Invoice, list[Payment]]:
    """One invoice as its customer sees it (their link): ``cleared``, ``outstanding``
    (nothing on a void one), ``state``, ``days_late``; and the cleared payments on it."""
    invoice = Invoice.objects.filter(pk=invoice_id).select_related("deal").with_cleared().get()
    invoice.state = invoice.state_for(invoice.cleared)
    invoice.outstanding = ZERO if invoice.is_void else max(invoice.amount - invoice.cleared, ZERO)
    invoice.days_late = max((today - invoice.due_date).days, 0) if invoice.outstanding else 0
    payments = list(
        invoice.payments.filter(status=PaymentStatus.CLEARED).order_by("cleared_at", "id")
    )
    return invoice, payments


def pay_to() -> dict:
    """How to pay the business (settings ``CLEARED_PAY_TO_*``); empty values left out."""
    fields = {
        "Pay to": settings.CLEARED_PAY_TO_NAME,
        "Bank": settings.CLEARED_PAY_TO_BANK,
        "IBAN": settings.CLEARED_PAY_TO_IBAN,
        "BIC / SWIFT": settings.CLEARED_PAY_TO_BIC,
    }
    return {
        "lines": [(label, value) for label, value in fields.items() if value],
        "note": settings.CLEARED_PAY_TO_NOTE,
    }


# --- Days sales outstanding -------------------------------------------

DSO_WINDOW_DAYS = 90


@dataclass
class Receivables:
    """One rep's or one customer's receivables, for the DSO report.

    - ``open``: what open invoices still owe today (amount less cleared money);
    - ``invoiced``: invoices issued in the last ``DSO_WINDOW_DAYS`` days (not void);
    - ``dso``: days sales outstanding = open ÷ invoiced × ``DSO_WINDOW_DAYS``
      (the standard "period-end receivables over the period's credit sales"
      method); None when nothing was invoiced in the window;
    - ``days_to_pay``: over invoices paid in full in the window, the average
      days from issue to the day the payment that covered them cleared;
    - ``open_age``: the average days since issue of the open invoices.
    """

    pk: int
    name: str = ""
    open: Decimal = ZERO
    overdue: Decimal = ZERO
    invoiced: Decimal = ZERO
    open_count: int = 0
    open_days: int = 0
    paid_count: int = 0
    paid_days: int = 0
    window: int = DSO_WINDOW_DAYS

    @property
    def dso(self) -> Decimal | None:
        if not self.invoiced:
            return None
        return (self.open / self.invoiced * self.window).quantize(Decimal("0.1"))

    @property
    def days_to_pay(self) -> Decimal | None:
        if not self.paid_count:
            return None
        return (Decimal(self.paid_days) / self.paid_count).quantize(Decimal("0.1"))

    @property
    def open_age(self) -> Decimal | None:
        if not self.open_count:
            return None
        return (Decimal(self.open_days) / self.open_count).quantize(Decimal("0.1"))

    @property
    def overdue_percent(self) -> Decimal | None:
        if not self.open:
            return None
        return (self.overdue / self.open * 100).quantize(Decimal("1"))


@dataclass
class DsoReport:
    today: date
    window: int
    team: Receivables
    reps: list[Receivables]
    customers: list[Receivables]
    customers_total: int  # customers with receivables; ``customers`` is the top ones


def dso_report(user, today: date | None = None, *, top_customers: int = 25) -> DsoReport:
    """DSO, days to pay and open receivables per rep and per customer, over the deals
    ``user`` may see (a manager: their team). Three queries, whatever the team's size:
    the invoices that count (open, issued in the window, or paid in it), the team's
    sellers, the top customers' names."""
    today = today or timezone.localdate()
    since = today - timedelta(days=DSO_WINDOW_DAYS)
    rows = (
        Invoice.objects.visible_to(user)
        .filter(voided_at__isnull=True, issue_date__lte=today)
        .with_cleared()
        .with_paid_on()
        .filter(Q(cleared__lt=F("amount")) | Q(issue_date__gt=since) | Q(paid_on__gt=since))
        .order_by()
        .values(
            "amount",
            "issue_date",
            "due_date",
            "cleared",
            "paid_on",
            # Credited to who sold the deal: a handover does not move a leaver's DSO.
            rep_pk=F("deal__sold_by_id"),
            customer_pk=F("deal__customer_id"),
        )
    )
    team = Receivables(pk=0, name="The team")
    by_rep: dict[int, Receivables] = {}
    by_customer: dict[int, Receivables] = {}
    for row in rows:
        for figures in (
            team,
            by_rep.setdefault(row["rep_pk"], Receivables(pk=row["rep_pk"])),
            by_customer.setdefault(row["customer_pk"], Receivables(pk=row["customer_pk"])),
        ):
            _count_invoice(figures, row, today, since)
    sellers = team_sellers(user).order_by("first_name", "username")
    sellers = {seller.pk: seller for seller in sellers}
    reps = []
    for pk, seller in sellers.items():
        figures = by_rep.get(pk, Receivables(pk=pk))
        figures.name = seller.get_full_name() or seller.username
        reps.append(figures)
    customers = sorted(
        (c for c in by_customer.values() if c.open or c.paid_count or c.invoiced),
        key=lambda c: (-c.open, c.pk),
    )
    shown = customers[:top_customers]
    names = dict(Customer.objects.filter(pk__in=[c.pk for c in shown]).values_list("pk", "name"))
    for figures in shown:
        figures.name = names.get(figures.pk, "")
    return DsoReport(
        today=today,
        window=DSO_WINDOW_DAYS,
        team=team,
        reps=reps,
        customers=shown,
        customers_total=len(customers),
    )


def _count_invoice(figures: Receivables, row: dict, today: date, since: date) -> None:
    owed = row["amount"] - row["cleared"]
    if owed > 0:
        figures.open += owed
        figures.open_count += 1
        figures.open_days += (today - row["issue_date"]).days
        if row["due_date"] < today:
            figures.overdue += owed
    if row["issue_date"] > since:
        figures.invoiced += row["amount"]
    if owed <= 0 and row["paid_on"] is not None and row["paid_on"] > since:
        figures.paid_count += 1
        figures.paid_days += max((row["paid_on"] - row["issue_date"]).days, 0)
