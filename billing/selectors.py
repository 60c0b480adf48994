"""Reads about money that span models. Sums and averages are done in SQL."""

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Greatest
from django.utils import timezone

from billing.models import (
    LIVE_STATUSES,
    CommissionRate,
    ExceptionKind,
    ExceptionRequest,
    Invoice,
    Payment,
    PaymentEvent,
    PaymentPlan,
    PaymentStatus,
    Refund,
    RequestState,
    TermsException,
    paid_against,
    rate_percent,
    refunded_on,
)
from billing.policy import billing_refusal, cutoff_advice, left_to_invoice
from pipeline.access import can_manage
from pipeline.models import Deal
from pipeline.stages import Stage
from pipeline.terms import (
    PaymentHistory,
    PaymentOption,
    deposit_amount,
    money_sum,
)

# --- Standing and terms -------------------------------------------


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
    invoices = (
        Invoice.objects.filter(deal__customer=customer, voided_at__isnull=True)
        .with_cleared()
        .with_paid_on()
        .annotate(paid=Case(When(cleared__gte=F("amount"), then=Value(True)), default=Value(False)))
        .filter(Q(paid=True) | Q(due_date__lt=today))
        .annotate(
            settled_on=Case(When(paid=True, then=F("paid_on")), default=Value(today)),
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
    # Money in (pending or cleared) with no invoice: a deposit, an early check.
    paid_without_invoice: Decimal
    pending: Decimal
    # Cleared money still ours: cleared payments less what was refunded of them.
    cleared: Decimal
    bounced: Decimal
    refunded: Decimal = Decimal("0.00")
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
        """What is left to invoice (``billing.policy.left_to_invoice``)."""
        return left_to_invoice(self.amount, self.invoiced, self.paid_without_invoice)


def deal_money(deal: Deal) -> DealMoney:
    """Everything the deal's money panel shows: figures summed in SQL, then the ledger."""
    sums = Payment.objects.filter(deal=deal).aggregate(
        pending=money_sum("amount", status=PaymentStatus.PENDING),
        cleared=money_sum("amount", status=PaymentStatus.CLEARED),
        bounced=money_sum("amount", status__in=(PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK)),
        paid_without_invoice=money_sum("amount", status__in=LIVE_STATUSES, invoice__isnull=True),
    )
    invoiced = Invoice.objects.filter(deal=deal, voided_at__isnull=True).aggregate(
        total=money_sum("amount")
    )["total"]
    payments = list(
        deal.payments.select_related("recorded_by", "invoice", "instalment").prefetch_related(
            Prefetch("events", queryset=PaymentEvent.objects.select_related("actor")),
            Prefetch("refunds", queryset=Refund.objects.select_related("actor")),
        )
    )
    invoices = with_invoice_states(deal.invoices.with_cleared().order_by("number"))
    methods = list(deal.payment_methods.select_related("recorded_by"))
    plan = PaymentPlan.objects.filter(deal=deal).first()
    instalments = []
    if plan is not None:
        instalments = list(plan.instalments.annotate(cleared=paid_against("instalment")))
    # Money given back comes off the cleared money, as on the deal's copies.
    sums["refunded"] = refunded_on(Payment.objects.filter(deal=deal))
    sums["cleared"] -= sums["refunded"]
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
        cutoff_advice=cutoff_advice(deal),
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
        .with_cleared()
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
