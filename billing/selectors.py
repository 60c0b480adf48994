"""Reads about money that span models. Sums and averages are done in SQL."""

import calendar
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DecimalField,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, TruncDate
from django.utils import timezone

from billing.chase import rung_label
from billing.models import (
    CommissionEntry,
    CommissionRate,
    CustomerEmail,
    EmailKind,
    EmailState,
    ExceptionKind,
    ExceptionRequest,
    Invoice,
    Payment,
    PaymentEvent,
    PaymentPlan,
    PaymentStatus,
    RequestState,
    TermsException,
    rate_percent,
)
from billing.policy import billing_refusal, cutoff_advice
from pipeline.access import can_manage, team_sellers
from pipeline.models import Customer, Deal, disputed_at_audit
from pipeline.stages import Stage
from pipeline.terms import (
    ZERO,
    PaymentHistory,
    PaymentOption,
    deposit_amount,
)

MONEY = DecimalField(max_digits=14, decimal_places=2)


def _money_sum(expression: str, **filter_kwargs) -> Coalesce:
    condition = Q(**filter_kwargs) if filter_kwargs else None
    return Coalesce(Sum(expression, filter=condition), Value(ZERO), output_field=MONEY)


# --- Standing and terms -------------------------------------------


def _cleared_on_invoice():
    return (
        Payment.objects.filter(invoice=OuterRef("pk"), status=PaymentStatus.CLEARED)
        .order_by()
        .values("invoice")
    )


def customer_payment_history(customer, today: date | None = None) -> PaymentHistory:
    """The customer's payment history, as the terms policy needs it.

    - paid deals: their deals in Payment cleared;
    - average days late: over their invoices that are paid (cleared money
      covers them) or past due, how many days after the due date they were
      paid — or, still unpaid, how late they are today; early counts as 0;
    - recent bounces: bounced or charged-back payments in the last
      ``CLEARED_BOUNCE_WINDOW_DAYS`` days.
    """
    today = today or timezone.localdate()
    paid_deals = Deal.objects.filter(customer=customer, stage=Stage.PAYMENT_CLEARED).count()
    cleared = _cleared_on_invoice()
    invoices = (
        Invoice.objects.filter(deal__customer=customer, voided_at__isnull=True)
        .annotate(
            cleared=Coalesce(
                Subquery(cleared.annotate(total=Sum("amount")).values("total")),
                Value(ZERO),
                output_field=MONEY,
            ),
            last_cleared_on=Subquery(
                cleared.annotate(last=Max(TruncDate("cleared_at"))).values("last")
            ),
        )
        .annotate(paid=Case(When(cleared__gte=F("amount"), then=Value(True)), default=Value(False)))
        .filter(Q(paid=True) | Q(due_date__lt=today))
        .annotate(
            settled_on=Case(When(paid=True, then=F("last_cleared_on")), default=Value(today)),
        )
        .annotate(
            late=Greatest(
                ExpressionWrapper(F("settled_on") - F("due_date"), output_field=DurationField()),
                Value(timedelta(0)),
                output_field=DurationField(),
            )
        )
    )
    lateness = invoices.aggregate(count=Count("id"), total=Sum("late"))
    average = None
    if lateness["count"]:
        total: timedelta = lateness["total"] or timedelta(0)
        average = (Decimal(total.days) + Decimal(total.seconds) / 86400) / lateness["count"]
    since = timezone.now() - timedelta(days=settings.CLEARED_BOUNCE_WINDOW_DAYS)
    bounces = PaymentEvent.objects.filter(
        payment__deal__customer=customer,
        to_status__in=(PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK),
        at__gte=since,
    ).count()
    return PaymentHistory(paid_deals=paid_deals, average_days_late=average, recent_bounces=bounces)


def active_invoicing_exception(customer_id: int, today: date | None = None):
    """The newest allow-invoicing exception still valid for this customer, if any."""
    today = today or timezone.localdate()
    return (
        # A customer's, not one deal's (an approved "Ask my manager" request).
        TermsException.objects.filter(
            customer_id=customer_id, kind=ExceptionKind.ALLOW_INVOICING, deal__isnull=True
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .select_related("granted_by")
        .first()
    )


def customer_exceptions(customer) -> list[TermsException]:
    return list(customer.terms_exceptions.select_related("granted_by", "deal"))


def deal_exceptions(deal: Deal):
    """The exceptions that shaped a deal's terms: its own, and its customer's invoicing ones."""
    return TermsException.objects.filter(
        Q(deal=deal) | Q(deal__isnull=True, customer_id=deal.customer_id)
    ).select_related("granted_by")


def invoicing_request_refusal(deal: Deal) -> str | None:
    """Why a deal whose invoicing was asked of the manager ("Ask my manager") is not
    invoiced yet, or None: none asked, or the latest request was approved."""
    ask = (
        ExceptionRequest.objects.filter(deal=deal, kind=ExceptionKind.ALLOW_INVOICING)
        .select_related("decided_by")
        .order_by("-asked_at", "-id")
        .first()
    )
    if ask is None or ask.state == RequestState.APPROVED:
        return None
    if ask.state == RequestState.ASKED:
        return (
            f"The customer is a slow payer: invoicing this deal waits for your manager's "
            f"decision (asked {ask.asked_at:%-d %b})."
        )
    note = f" ({ask.decision_note})" if ask.decision_note else ""
    return (
        f"{ask.decided_by} declined invoicing this slow payer{note}: agree upfront or on "
        "file with the customer and change the payment option (Edit the deal)."
    )


def exception_requests_to_decide(user) -> QuerySet:
    """The requests a user may decide: their own reps' (any, for a superuser)."""
    requests = ExceptionRequest.objects.select_related("deal", "deal__customer", "rep")
    if user.is_superuser:
        return requests
    if not can_manage(user):
        return requests.none()
    return requests.filter(rep__manager=user)


# --- The deal's money panel -------------------------------------------


@dataclass
class DealMoney:
    amount: Decimal
    deposit_required: bool
    deposit_amount: Decimal
    deposit_in: bool
    invoiced: Decimal
    pending: Decimal
    cleared: Decimal
    bounced: Decimal
    payments: list = field(default_factory=list)
    invoices: list = field(default_factory=list)
    methods: list = field(default_factory=list)
    plan: PaymentPlan | None = None
    instalments: list = field(default_factory=list)
    # Why no invoice or charge can be made now (disputed, or before the audit),
    # and why no payment can be recorded: None when the buttons are offered.
    billing_refusal: str | None = None
    payment_refusal: str | None = None
    cutoff_advice: str | None = None
    # "Ask my manager": the deal's requests, newest first.
    exception_requests: list = field(default_factory=list)

    @property
    def waiver_asked(self):
        """The deposit waiver asked and not decided yet, if any."""
        for ask in self.exception_requests:
            if ask.kind == ExceptionKind.WAIVE_DEPOSIT and ask.state == RequestState.ASKED:
                return ask
        return None

    @property
    def outstanding(self) -> Decimal:
        """What is not cleared yet: only cleared money counts."""
        return self.amount - self.cleared

    @property
    def open_balance(self) -> Decimal:
        """What nobody has paid yet, not even pending: the most a new payment may be."""
        return self.amount - self.cleared - self.pending

    @property
    def uninvoiced(self) -> Decimal:
        return self.amount - self.invoiced


def deal_money(deal: Deal) -> DealMoney:
    """Everything the deal's money panel shows: figures summed in SQL, then the ledger."""
    sums = Payment.objects.filter(deal=deal).aggregate(
        pending=_money_sum("amount", status=PaymentStatus.PENDING),
        cleared=_money_sum("amount", status=PaymentStatus.CLEARED),
        bounced=_money_sum(
            "amount", status__in=(PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK)
        ),
    )
    invoiced = Invoice.objects.filter(deal=deal, voided_at__isnull=True).aggregate(
        total=_money_sum("amount")
    )["total"]
    payments = list(
        deal.payments.select_related("recorded_by", "invoice", "instalment").prefetch_related(
            Prefetch("events", queryset=PaymentEvent.objects.select_related("actor"))
        )
    )
    invoices = with_invoice_states(
        deal.invoices.annotate(
            cleared=_money_sum("payments__amount", payments__status=PaymentStatus.CLEARED)
        ).order_by("number")
    )
    methods = list(deal.payment_methods.select_related("recorded_by"))
    plan = PaymentPlan.objects.filter(deal=deal).first()
    instalments = []
    if plan is not None:
        instalments = list(
            plan.instalments.annotate(
                cleared=_money_sum("payments__amount", payments__status=PaymentStatus.CLEARED)
            )
        )
    live = sums["pending"] + sums["cleared"]
    required = deposit_amount(deal.amount, deal.payment_option)
    deposit_in = bool(methods) if deal.payment_option == PaymentOption.ON_FILE else live >= required
    return DealMoney(
        amount=deal.amount,
        deposit_required=deal.deposit_required,
        deposit_amount=required,
        deposit_in=deposit_in,
        invoiced=invoiced,
        payments=payments,
        invoices=invoices,
        methods=methods,
        plan=plan,
        instalments=instalments,
        # The manager's pending (or declined) exception first: it is the rep's next move.
        billing_refusal=" ".join(
            refusal
            for refusal in (invoicing_request_refusal(deal), billing_refusal(deal))
            if refusal
        )
        or None,
        payment_refusal=billing_refusal(deal, payment=True),
        exception_requests=list(
            deal.exception_requests.select_related("rep", "decided_by").order_by(
                "-asked_at", "-id"
            )[:5]
        ),
        cutoff_advice=cutoff_advice(deal, settings.REMINDERS_INVOICE_CUTOFF_DAYS),
        **sums,
    )


# --- Lists -------------------------------------------


def payments_for(user, status: str = ""):
    """Payments on deals the user may see, newest first; ``status`` filters."""
    payments = Payment.objects.visible_to(user).select_related(
        "deal", "deal__customer", "deal__rep", "recorded_by", "invoice"
    )
    if status in PaymentStatus.values:
        payments = payments.filter(status=status)
    return payments.order_by("-recorded_at", "-id")


INVOICE_FILTERS = {
    "open": "Open (not paid)",
    "overdue": "Overdue",
    "paid": "Paid",
    "void": "Void",
}


def invoices_for(user, state: str = "", today: date | None = None):
    """Invoices of deals the user may see, with the cleared money against each."""
    today = today or timezone.localdate()
    invoices = (
        Invoice.objects.visible_to(user)
        .select_related("deal", "deal__customer", "deal__rep")
        .annotate(cleared=_money_sum("payments__amount", payments__status=PaymentStatus.CLEARED))
    )
    unpaid = Q(voided_at__isnull=True, cleared__lt=F("amount"))
    if state == "open":
        invoices = invoices.filter(unpaid)
    elif state == "overdue":
        invoices = invoices.filter(unpaid, due_date__lt=today)
    elif state == "paid":
        invoices = invoices.filter(voided_at__isnull=True, cleared__gte=F("amount"))
    elif state == "void":
        invoices = invoices.filter(voided_at__isnull=False)
    return invoices.order_by("-number")


def with_invoice_states(invoices, today: date | None = None) -> list[Invoice]:
    today = today or timezone.localdate()
    rows = list(invoices)
    for invoice in rows:
        invoice.state = invoice.state_for(invoice.cleared)
        invoice.overdue = invoice.is_overdue(today, invoice.cleared)
    return rows


# --- Commission -------------------------------------------


@dataclass(frozen=True)
class MonthFigures:
    """A rep's month (DOMAIN.md, Commission: it is not a sale until it is paid).

    promised: deals promised in the month; pending: payments recorded in the
    month and still not cleared; cleared: money cleared in the month, less
    what bounced or was charged back after clearing (the commission ledger's
    base); earned: commission earned in the month, less clawbacks.
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

    ``with_pending=False`` skips the pending sum (two queries) where a page
    shows only promised vs cleared, like the Not paid yet board.
    """
    start, end = month_bounds(month)
    rep_ids = list(rep_ids)
    promised = dict(
        Deal.objects.filter(rep_id__in=rep_ids, promised_at__gte=start, promised_at__lt=end)
        .exclude(disputed_at_audit())
        .order_by()
        .values_list("rep_id")
        .annotate(total=_money_sum("amount"))
    )
    pending = (
        {}
        if not with_pending
        else dict(
            Payment.objects.filter(
                deal__rep_id__in=rep_ids,
                status=PaymentStatus.PENDING,
                recorded_at__gte=start,
                recorded_at__lt=end,
            )
            .exclude(disputed_at_audit("deal__"))
            .order_by()
            .values_list("deal__rep_id")
            .annotate(total=_money_sum("amount"))
        )
    )
    ledger = {
        row["rep_id"]: row
        for row in CommissionEntry.objects.filter(rep_id__in=rep_ids, at__gte=start, at__lt=end)
        .exclude(disputed_at_audit("deal__"))
        .order_by()
        .values("rep_id")
        .annotate(cleared=_money_sum("base"), earned=_money_sum("amount"))
    }
    return {
        rep_id: MonthFigures(
            promised=promised.get(rep_id, ZERO),
            pending=pending.get(rep_id, ZERO),
            cleared=ledger.get(rep_id, {}).get("cleared", ZERO),
            earned=ledger.get(rep_id, {}).get("earned", ZERO),
        )
        for rep_id in rep_ids
    }


def rep_month_figures(rep, month: date | None = None) -> MonthFigures:
    """Promised / pending / cleared / earned for one rep, in ``month``'s month (default: now)."""
    month = month or timezone.localdate()
    return team_month_figures([rep.pk], month)[rep.pk]


def commission_ledger(rep_ids, month: date):
    """The commission entries behind the month's figures, newest first."""
    start, end = month_bounds(month)
    return (
        CommissionEntry.objects.filter(rep_id__in=list(rep_ids), at__gte=start, at__lt=end)
        .exclude(disputed_at_audit("deal__"))
        .select_related("rep", "deal", "deal__customer", "payment")
        .order_by("-at", "-id")
    )


@dataclass(frozen=True)
class RateInForce:
    """A rep's commission rate today, and the next one already set for a later day."""

    rate: Decimal
    since: date | None  # None: the default rate, CLEARED_COMMISSION_RATE
    next_rate: Decimal | None = None
    next_from: date | None = None

    @property
    def percent(self) -> str:
        return rate_percent(self.rate)

    @property
    def next_percent(self) -> str:
        return rate_percent(self.next_rate) if self.next_rate is not None else ""


def rates_in_force(reps) -> dict[int, RateInForce]:
    """Each rep's commission rate in force today (their own today) and the
    next one set, from one query over their rate histories (the Team page)."""
    reps = list(reps)
    history: dict[int, list[CommissionRate]] = {rep.pk: [] for rep in reps}
    for rate in CommissionRate.objects.filter(rep_id__in=list(history)).order_by(
        "rep_id", "-effective_from", "-id"
    ):
        history[rate.rep_id].append(rate)
    now = timezone.now()
    found = {}
    for rep in reps:
        today = now.astimezone(zoneinfo.ZoneInfo(rep.time_zone)).date()
        current = next((r for r in history[rep.pk] if r.effective_from <= today), None)
        upcoming = [r for r in history[rep.pk] if r.effective_from > today]
        # The next change: the earliest later day, its last-set rate.
        after = min(upcoming, key=lambda r: (r.effective_from, -r.pk)) if upcoming else None
        found[rep.pk] = RateInForce(
            rate=current.rate if current else settings.CLEARED_COMMISSION_RATE,
            since=current.effective_from if current else None,
            next_rate=after.rate if after else None,
            next_from=after.effective_from if after else None,
        )
    return found


def rate_history(rep_id: int):
    """A rep's commission rates, latest day first (the rate form's history)."""
    return CommissionRate.objects.filter(rep_id=rep_id).select_related("set_by")


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
    less what had cleared before) and the payments recorded (cleared since)
    in the week after it — up to the next chase of the same invoice, so no
    payment counts twice. The total counts each invoice's debt once, at its
    first chase. Two queries.
    """
    emails = list(
        CustomerEmail.objects.filter(
            kind=EmailKind.CHASE, state=EmailState.SENT, deal__rep__in=reps, sent_at__gte=since
        )
        .select_related("invoice")
        .order_by("invoice_id", "sent_at", "id")
    )
    payments: dict[int, list] = {}
    for invoice_id, amount, recorded_at, cleared_at in Payment.objects.filter(
        invoice_id__in={email.invoice_id for email in emails}, status=PaymentStatus.CLEARED
    ).values_list("invoice_id", "amount", "recorded_at", "cleared_at"):
        payments.setdefault(invoice_id, []).append((amount, recorded_at, cleared_at))
    per_rung: dict[int, list[Decimal]] = {}
    total_owed = total_in = ZERO
    for index, email in enumerate(emails):
        paid = payments.get(email.invoice_id, [])
        before = sum((a for a, _, cleared in paid if cleared and cleared < email.sent_at), ZERO)
        owed = max(email.invoice.amount - before, ZERO)
        following = emails[index + 1] if index + 1 < len(emails) else None
        end = email.sent_at + week
        if following is not None and following.invoice_id == email.invoice_id:
            end = min(end, following.sent_at)
        came = sum((a for a, recorded, _ in paid if email.sent_at <= recorded < end), ZERO)
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


def _payments_on_invoice(status: str, before: datetime | None, moment: str):
    payments = Payment.objects.filter(invoice=OuterRef("pk"), status=status)
    if before is not None:
        payments = payments.filter(**{f"{moment}__lt": before})
    return Coalesce(
        Subquery(
            payments.order_by().values("invoice").annotate(total=Sum("amount")).values("total")
        ),
        Value(ZERO),
        output_field=MONEY,
    )


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
            cleared=_payments_on_invoice(PaymentStatus.CLEARED, before, "cleared_at"),
            pending=_payments_on_invoice(PaymentStatus.PENDING, before, "recorded_at"),
        )
        .filter(cleared__lt=F("amount"))
        .order_by("due_date", "number")
    )


def statement_context(customer, as_of: date, *, deals=None) -> dict:
    """Everything a customer's statement shows at the end of ``as_of``: the page, its
    PDF and the customer's link all render ``billing/statement.html`` from this.

    - ``invoices``: open invoices (not void, cleared money short of the amount),
      each with ``outstanding`` (amount less cleared), ``pending`` (received,
      not cleared yet: it still counts as owed), ``days_late`` and ``bucket``;
    - ``payments``: money received on the customer's deals in the
      ``STATEMENT_PAYMENT_DAYS`` days up to ``as_of``, any status, oldest first;
    - ``total_due``, ``overdue``, ``pending`` and ``aging`` (the outstanding
      money by days past due, ``AGING_BUCKETS``).

    ``deals`` narrows the statement to the deals a person may see. Two queries.
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
    return {
        "customer": customer,
        "as_of": as_of,
        "invoices": invoices,
        "payments": list(payments.select_related("invoice").order_by("recorded_at", "id")),
        "payments_since": since,
        "total_due": total_due,
        "overdue": overdue,
        "pending": pending,
        "aging": [(label, aging[label]) for label, _, _ in AGING_BUCKETS],
        "pay_to": pay_to(),
    }


def invoice_for_customer(invoice_id: int, today: date) -> tuple[Invoice, list[Payment]]:
    """One invoice as its customer sees it (their link): ``cleared``, ``outstanding``
    (nothing on a void one), ``state``, ``days_late``; and the cleared payments on it."""
    invoice = (
        Invoice.objects.filter(pk=invoice_id)
        .select_related("deal")
        .annotate(cleared=_money_sum("payments__amount", payments__status=PaymentStatus.CLEARED))
        .get()
    )
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
    cleared = _cleared_on_invoice()
    rows = (
        Invoice.objects.visible_to(user)
        .filter(voided_at__isnull=True, issue_date__lte=today)
        .annotate(
            cleared=Coalesce(
                Subquery(cleared.annotate(total=Sum("amount")).values("total")),
                Value(ZERO),
                output_field=MONEY,
            ),
            paid_on=Subquery(cleared.annotate(last=Max(TruncDate("cleared_at"))).values("last")),
        )
        .filter(Q(cleared__lt=F("amount")) | Q(issue_date__gt=since) | Q(paid_on__gt=since))
        .order_by()
        .values(
            "amount",
            "issue_date",
            "due_date",
            "cleared",
            "paid_on",
            rep_pk=F("deal__rep_id"),
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
