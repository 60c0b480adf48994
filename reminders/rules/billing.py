"""The rules read from billing: payment bounced, payment due and the overdue
ladder (invoices and instalments), invoice cut-off, and "Ask my manager"
(an exception asked, then decided).

Facts: ``facts.bounces``, ``facts.invoices`` (not void, with the cleared money
that pays each), ``facts.instalments`` (the same), ``facts.invoiced`` (the
sum of the invoices), ``facts.requests`` (exception requests) and
``facts.bounced_emails`` (customer emails refused for good) and
``facts.answers`` (what the customer said through their link), loaded by
``load`` in six queries."""

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import DecimalField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from billing.models import (
    CustomerEmail,
    CustomerResponse,
    EmailKind,
    EmailState,
    ExceptionKind,
    ExceptionRequest,
    Instalment,
    Invoice,
    Payment,
    PaymentEvent,
    PaymentStatus,
    RequestState,
    ResponseKind,
    invoice_display_number,
)
from billing.policy import next_cutoff
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from reminders.models import ReminderKind
from reminders.rules.base import (
    MANAGER,
    REP,
    Facts,
    Gone,
    Known,
    Rule,
    Want,
    Window,
    day_text,
    deals,
    local_day,
    morning_of,
    setting_days,
)


def _money(amount) -> str:
    return f"{settings.CURRENCY_SYMBOL}{amount:,.2f}"


@dataclass(frozen=True)
class Bounce:
    payment_id: int
    at: datetime
    to_status: str
    amount: Decimal


@dataclass(frozen=True)
class Debt:
    """An invoice or an instalment: what is billed, when it is due, what cleared."""

    id: int
    label: str
    amount: Decimal
    due_date: date
    cleared: Decimal

    @property
    def unpaid(self) -> bool:
        return self.cleared < self.amount


def _cleared(payment_field: str):
    return Coalesce(
        Subquery(
            Payment.objects.filter(**{payment_field: OuterRef("pk")}, status=PaymentStatus.CLEARED)
            .order_by()
            .values(payment_field)
            .annotate(total=Sum("amount"))
            .values("total")
        ),
        Value(Decimal("0.00")),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )


@dataclass(frozen=True)
class Request:
    """A rep asking their manager to lift a refusal of the terms policy."""

    id: int
    kind: str
    state: str
    reason: str
    asked_at: datetime
    decided_at: datetime | None
    decided_by_id: int | None
    decision_note: str
    rep_name: str
    decider_name: str


@dataclass(frozen=True)
class Email:
    """An email to the customer (billing.CustomerEmail): an invoice's, or one that bounced."""

    id: int
    settled_at: datetime | None
    to_address: str
    kind: str
    invoice_number: int | None
    invoice_id: int | None
    state: str
    next_attempt_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class Answer:
    """The customer's own answer through their link: "I've paid" or "I'll pay on …"."""

    id: int
    kind: str
    invoice_id: int
    reference: str
    promised_for: date | None
    created_at: datetime
    customer: str


def _person(first: str | None, last: str | None, username: str | None, fallback: str) -> str:
    return f"{first or ''} {last or ''}".strip() or username or fallback


def load(facts: dict[int, Facts]) -> None:
    """Bounces, invoices, instalments and exception requests of the batch's deals."""
    ids = list(facts)
    for f in facts.values():
        f.bounces, f.invoices, f.instalments, f.requests = [], [], [], []
        f.bounced_emails, f.invoice_emails, f.answers = [], [], []
        f.invoiced = Decimal("0.00")
    bounces = PaymentEvent.objects.order_by().filter(
        payment__deal_id__in=ids, to_status__in=[PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK]
    )
    for deal_id, *fields in bounces.values_list(
        "payment__deal_id", "payment_id", "at", "to_status", "payment__amount"
    ):
        facts[deal_id].bounces.append(Bounce(*fields))
    invoices = (
        Invoice.objects.order_by()
        .filter(deal_id__in=ids, voided_at__isnull=True)
        .annotate(paid=_cleared("invoice"))
        .values_list("deal_id", "id", "number", "amount", "due_date", "paid")
    )
    for deal_id, pk, number, amount, due_date, paid in invoices:
        label = invoice_display_number(number)  # "INV-00009", as everywhere
        facts[deal_id].invoices.append(Debt(pk, label, amount, due_date, paid))
        facts[deal_id].invoiced += amount
    instalments = (
        Instalment.objects.order_by()
        .filter(plan__deal_id__in=ids)
        .annotate(paid=_cleared("instalment"))
        .values_list("plan__deal_id", "id", "sequence", "amount", "due_date", "paid")
    )
    for deal_id, *fields in instalments:
        facts[deal_id].instalments.append(Debt(*fields))
    requests = (
        ExceptionRequest.objects.order_by()
        .filter(deal_id__in=ids)
        .values_list(
            "deal_id", "id", "kind", "state", "reason", "asked_at", "decided_at",
            "decided_by_id", "decision_note", "rep__first_name", "rep__last_name",
            "rep__username", "decided_by__first_name", "decided_by__last_name",
            "decided_by__username",
        )
    )  # fmt: skip
    emails = CustomerEmail.objects.order_by().filter(
        Q(kind=EmailKind.INVOICE) | Q(state=EmailState.BOUNCED, settled_at__isnull=False),
        deal_id__in=ids,
    )
    for deal_id, *fields in emails.values_list(
        "deal_id", "id", "settled_at", "to_address", "kind", "invoice__number", "invoice_id",
        "state", "next_attempt_at", "sent_at",
    ):  # fmt: skip
        email = Email(*fields)
        if email.state == EmailState.BOUNCED:
            facts[deal_id].bounced_emails.append(email)
        if email.kind == EmailKind.INVOICE:
            facts[deal_id].invoice_emails.append(email)
    answers = CustomerResponse.objects.order_by("created_at", "id").filter(invoice__deal_id__in=ids)
    for deal_id, *fields in answers.values_list(
        "invoice__deal_id", "id", "kind", "invoice_id", "reference", "promised_for",
        "created_at", "invoice__deal__customer__name",
    ):  # fmt: skip
        facts[deal_id].answers.append(Answer(*fields))
    for deal_id, *fields, rf, rl, ru, df, dl, du in requests:
        rep_name = _person(rf, rl, ru, "Your rep")
        facts[deal_id].requests.append(
            Request(*fields, rep_name, _person(df, dl, du, "Your manager"))
        )


# --- payment bounced ----------------------------------------------------------------


def _bounced_rule(owner: str) -> Rule:
    suffix = "rep" if owner == REP else "manager"

    def wants(f: Facts, window: Window):
        for bounce in f.bounces:
            verb = "was charged back" if bounce.to_status == "charged_back" else "bounced"
            yield Want(
                f"p{bounce.payment_id}/{suffix}",
                bounce.at,
                f"A payment of {_money(bounce.amount)} {verb} on {day_text(bounce.at)}: "
                "the deal is not paid — ask for the money again.",
            )

    def clock(window: Window):
        return (
            PaymentEvent.objects.order_by()
            .filter(
                to_status__in=[PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK],
                at__gt=window.since,
                at__lte=window.horizon,
            )
            .values_list("payment__deal_id", flat=True)
        )

    return Rule(
        kind=ReminderKind.PAYMENT_BOUNCED,
        owner=owner,
        wants=wants,
        clock=clock,
        owns=lambda occurrence: occurrence.endswith(f"/{suffix}"),
        hovers=False,  # a bounce is "at once" (DOMAIN.md), a second one the same day too
    )


# --- payment due and the overdue ladder ---------------------------------------------


@dataclass(frozen=True)
class Owed:
    """Something billed with a due date, chased on its own: an invoice or an instalment.

    Its reminders' occurrence is ``<prefix><id><rung>`` (``i12+7``, ``n3``),
    so invoices and instalments share the payment kinds without colliding.
    """

    model: type  # billing's Invoice or Instalment
    facts: str  # the Facts attribute that lists them
    rep: str  # the path from it to its deal's rep
    prefix: str
    noun: str

    def name(self, debt: Debt) -> str:
        if self.model is Invoice:
            return f"Invoice {debt.label}"
        return f"Instalment {debt.label} of the payment plan"


INVOICE = Owed(Invoice, "invoices", "deal__rep", "i", "invoice")
INSTALMENT = Owed(Instalment, "instalments", "plan__deal__rep", "n", "instalment")


def _payment_rule(kind: str, days: int, owner: str, owed: Owed = INVOICE) -> Rule:
    """Payment due (``days`` = 0) or a rung of the overdue ladder (+``days``)."""
    rung = "" if days == 0 else f"+{days}" + ("/manager" if owner == MANAGER else "")
    lag = timedelta(days=days)
    mine = re.compile(rf"{owed.prefix}\d+{re.escape(rung)}")

    def wants(f: Facts, window: Window):
        for debt in getattr(f, owed.facts):
            if not debt.unpaid:
                continue
            left = _money(debt.amount - debt.cleared)
            if days == 0:
                due = day_text(debt.due_date)
                why = f"{owed.name(debt)} ({left}) is due {due}: ask for the money."
            else:
                why = (
                    f"{owed.name(debt)} ({left}) was due {day_text(debt.due_date)}, "
                    f"{days} days ago: ask for the money — avoiding it does not work."
                )
            yield Want(f"{owed.prefix}{debt.id}{rung}", morning_of(debt.due_date + lag, f.tz), why)

    def clock(window: Window):
        deal = owed.rep.removesuffix("__rep")
        rows = owed.model.objects.order_by().filter(window.mornings("due_date", lag, rep=owed.rep))
        if owed.model is Invoice:
            rows = rows.filter(voided_at__isnull=True)
        return rows.values_list(f"{deal}_id", flat=True)

    def paid(f: Facts, known: Known) -> bool:
        return not any(
            debt.unpaid and f"{owed.prefix}{debt.id}{rung}" == known.occurrence
            for debt in getattr(f, owed.facts)
        )

    return Rule(
        kind=kind,
        owner=owner,
        wants=wants,
        clock=clock,
        owns=lambda occurrence: mine.fullmatch(occurrence) is not None,
        gone=(Gone(paid, f"Paid: cleared money covers the {owed.noun}."),),
        ends_with_deal=False,  # paid is how it ends; a lost deal's debt is still owed
    )


def _ladder() -> list[int]:
    return sorted({int(day) for day in settings.REMINDERS_PAYMENT_LADDER_DAYS if int(day) > 0})


# --- invoice cut-off ----------------------------------------------------------------


def _cutoff_lead() -> timedelta:
    return setting_days("REMINDERS_INVOICE_CUTOFF_DAYS")


# An invoice email on its way or gone: the cut-off is taken care of.
_ON_ITS_WAY = (EmailState.QUEUED, EmailState.SENDING, EmailState.SENT)


def _unsent_invoices(f: Facts) -> list[Debt]:
    """Unpaid invoices not emailed nor scheduled to be, for a customer Cleared emails.

    A customer without an address gets their invoice some other way (post, a
    portal): issuing it is sending it."""
    if not (f.billing_email or f.customer_email):
        return []
    emailed = {e.invoice_id for e in f.invoice_emails if e.state in _ON_ITS_WAY}
    return [d for d in f.invoices if d.unpaid and d.id not in emailed]


def _invoice_cutoff(f: Facts, window: Window):
    """The customer's next cut-off, from today on: one reminder per deal and cut-off,
    while the deal is not fully invoiced or an invoice is not on its way.

    The cut-off is a day of the month (``Customer.accounting_cutoff_day``);
    ``billing.policy.next_cutoff`` works out its date. A cut-off already past
    is never named: the next one is.
    """
    if f.cutoff_day is None or f.stage not in (Stage.AUDIT_CONFIRMED, Stage.DELIVERED):
        return
    if f.payment_option != PaymentOption.INVOICE:
        return
    cutoff = next_cutoff(f.cutoff_day, local_day(window.now, f.tz))
    if f.invoiced < f.amount:
        what = f"send the invoice ({_money(f.amount - f.invoiced)} not invoiced)"
    elif unsent := _unsent_invoices(f):
        what = f"email invoice {', '.join(d.label for d in unsent)} (or schedule it)"
    else:
        return
    yield Want(
        cutoff.isoformat(),
        morning_of(cutoff - _cutoff_lead(), f.tz),
        f"The customer's accounting cut-off is {day_text(cutoff)}: {what} "
        "so it makes their payment run.",
    )


def _invoice_on_its_way(f: Facts, known: Known) -> bool:
    return f.invoiced >= f.amount and not _unsent_invoices(f)


def _how_it_went(f: Facts, known: Known) -> str:
    """Sent, or scheduled to go before the cut-off, or issued (no address to email)."""
    emails = [e for e in f.invoice_emails if e.state in _ON_ITS_WAY]
    if not emails:
        return "The invoice was issued."
    later = [e for e in emails if e.state == EmailState.QUEUED and e.next_attempt_at > f.now]
    if later:
        day = max(e.next_attempt_at for e in later)
        return f"Scheduled: the invoice is emailed on {day_text(day)}, before the cut-off."
    return "Sent: the invoice was emailed to the customer."


def _cutoff_clock(window: Window):
    lead = _cutoff_lead()
    first, last = window.dates(lag=-lead)
    if window.lookback is not None:  # the quick scan: only cut-offs whose morning just came
        cutoffs = window.morning_days(lag=-lead)
        if not cutoffs:
            return deals(pk__in=[])
        first, last = min(cutoffs), max(cutoffs)
    days: set[int] = set()
    day = max(first, window.now.date())
    while day <= last:
        days.add(day.day)
        if day.day == calendar.monthrange(day.year, day.month)[1]:
            days.update(range(day.day + 1, 32))  # a cut-off past a short month's end
        day += timedelta(days=1)
    return deals(
        payment_option=PaymentOption.INVOICE,
        stage__in=[Stage.AUDIT_CONFIRMED, Stage.DELIVERED],
        customer__accounting_cutoff_day__in=sorted(days),
    )


INVOICE_CUTOFF = Rule(
    kind=ReminderKind.INVOICE_CUTOFF,
    owner=REP,
    wants=_invoice_cutoff,
    clock=_cutoff_clock,
    gone=(Gone(_invoice_on_its_way, _how_it_went),),
    not_due_before_created=True,
)


# --- Ask my manager: an exception asked (the manager's), then decided (the rep's) -----
# One reminder of each kind per request (occurrence ``x<request id>``). The panel
# shows Approve / Decline on the manager's (templates/billing/_exception_decision.html).


def _what(kind: str) -> str:
    if kind == ExceptionKind.WAIVE_DEPOSIT:
        return "waive the deposit"
    return "allow invoicing this slow payer"


def _requests_clock(moment: str, *conditions):
    def clock(window: Window):
        return (
            ExceptionRequest.objects.order_by()
            .filter(*conditions, **{f"{moment}__gt": window.since})
            .filter(**{f"{moment}__lte": window.horizon})
            .values_list("deal_id", flat=True)
        )

    return clock


def _asked(f: Facts, window: Window):
    for request in f.requests:
        if request.state == RequestState.ASKED:
            yield Want(
                f"x{request.id}",
                request.asked_at,
                f"{request.rep_name} asks you to {_what(request.kind)}: “{request.reason}”",
            )


def _decided_as(state: str):
    def when(f: Facts, known: Known) -> bool:
        return any(r.state == state and f"x{r.id}" == known.occurrence for r in f.requests)

    return when


def _decider(f: Facts) -> int | None:
    decided = [r for r in f.requests if r.decided_by_id is not None]
    return max(decided, key=lambda r: r.decided_at).decided_by_id if decided else None


EXCEPTION_ASKED = Rule(
    kind=ReminderKind.EXCEPTION_ASKED,
    owner=MANAGER,
    wants=_asked,
    clock=_requests_clock("asked_at", Q(state=RequestState.ASKED)),
    gone=(
        Gone(_decided_as(RequestState.APPROVED), "Decided: approved.", by=_decider),
        Gone(_decided_as(RequestState.DECLINED), "Decided: declined.", by=_decider),
    ),
    hovers=False,  # each request is a question of its own
)


def _decided_why(request: Request) -> str:
    manager = request.decider_name
    if request.state == RequestState.APPROVED:
        if request.kind == ExceptionKind.WAIVE_DEPOSIT:
            return f"{manager} waived the deposit: the deal can move on without one."
        return (
            f"{manager} approved invoicing this slow payer: the deal is invoiced as usual "
            "once its audit is confirmed."
        )
    note = f": “{request.decision_note}”" if request.decision_note else ""
    then = (
        " — the deposit is still required: ask the customer for it."
        if request.kind == ExceptionKind.WAIVE_DEPOSIT
        else " — agree upfront or on file with the customer and change the payment option "
        "(Edit the deal)."
    )
    return f"{manager} declined to {_what(request.kind)}{note}{then}"


def _decided(f: Facts, window: Window):
    for request in f.requests:
        if request.state != RequestState.ASKED and request.decided_at is not None:
            yield Want(f"x{request.id}", request.decided_at, _decided_why(request))


EXCEPTION_DECIDED = Rule(
    kind=ReminderKind.EXCEPTION_DECIDED,
    owner=REP,
    wants=_decided,
    clock=_requests_clock("decided_at", ~Q(state=RequestState.ASKED)),
    # The rep marks it done; a paid deal is no reason to hide the answer.
    ends_with_deal=False,
    hovers=False,
)


# --- a customer email bounced ----------------------------------------------------------
# The mail server refused the customer's address for good (``billing.mail``): the
# rep corrects it. One reminder per bounced email (occurrence ``e<email id>``).


def _email_bounced(f: Facts, window: Window):
    for email in f.bounced_emails:
        what = "the invoice" if email.kind == "invoice" else "a payment reminder"
        number = (
            f", invoice {invoice_display_number(email.invoice_number)}"
            if email.invoice_number
            else ""
        )
        yield Want(
            f"e{email.id}",
            email.settled_at,
            f"An email to {email.to_address} ({what}{number}) bounced: the address is "
            "refused for good. Correct the customer's billing email, then send it again.",
        )


EMAIL_BOUNCED = Rule(
    kind=ReminderKind.EMAIL_BOUNCED,
    owner=REP,
    wants=_email_bounced,
    clock=lambda window: (
        CustomerEmail.objects.order_by()
        .filter(state=EmailState.BOUNCED, deal__isnull=False, settled_at__gt=window.since)
        .filter(settled_at__lte=window.horizon)
        .values_list("deal_id", flat=True)
    ),
    gone=(
        Gone(
            lambda f, known: f.billing_email_bounced_at is None,
            "A new billing address was entered.",
        ),
    ),
    hovers=False,  # each bounce is news
)


# --- the customer's answers through their link (billing/links.py) ---------------------
# Neither is money ("it isn't a sale until you're paid"): the rep checks that the
# money came, and a promised day that passes without cleared money is chased again.
# Occurrence ``i<invoice id>@<day>``: the answer's day, or the promised day.


def _unpaid_invoice(f: Facts, invoice_id: int) -> Debt | None:
    """The invoice, if it is not void and cleared money does not cover it."""
    return next((d for d in f.invoices if d.id == invoice_id and d.unpaid), None)


def _invoice_covered(f: Facts, known: Known) -> bool:
    invoice_id = int(known.occurrence[1:].partition("@")[0])
    return _unpaid_invoice(f, invoice_id) is None


def _says_paid(f: Facts, window: Window):
    for answer in f.answers:
        debt = _unpaid_invoice(f, answer.invoice_id)
        if answer.kind != ResponseKind.PAID or debt is None:
            continue
        reference = (answer.reference or "")[:60]
        quoted = f", reference “{reference}”" if reference else ", no reference given"
        yield Want(
            f"i{answer.invoice_id}@{answer.created_at.astimezone(UTC).date().isoformat()}",
            answer.created_at,
            f"{answer.customer} says invoice {debt.label} "
            f"({_money(debt.amount - debt.cleared)}) is paid{quoted}: check that the money "
            "came in — only cleared money counts.",
        )


CUSTOMER_SAYS_PAID = Rule(
    kind=ReminderKind.CUSTOMER_SAYS_PAID,
    owner=REP,
    wants=_says_paid,
    clock=lambda window: (
        CustomerResponse.objects.order_by()
        .filter(kind=ResponseKind.PAID, created_at__gt=window.since)
        .filter(created_at__lte=window.horizon)
        .values_list("invoice__deal_id", flat=True)
    ),
    gone=(Gone(_invoice_covered, "Paid: cleared money covers the invoice."),),
    hovers=False,
)


def _standing_promises(f: Facts) -> list[Answer]:
    """Promises not replaced by a later promise, for another day, on the same invoice."""
    promises = [a for a in f.answers if a.kind == ResponseKind.PROMISE and a.promised_for]
    return [
        a
        for a in promises
        if not any(
            b.invoice_id == a.invoice_id
            and b.created_at > a.created_at
            and b.promised_for != a.promised_for
            for b in promises
        )
    ]


def _promise_passed(f: Facts, window: Window):
    for answer in _standing_promises(f):
        debt = _unpaid_invoice(f, answer.invoice_id)
        if debt is None:
            continue
        yield Want(
            f"i{answer.invoice_id}@{answer.promised_for.isoformat()}",
            # The morning after: on the promised day itself the money may still come.
            morning_of(answer.promised_for + timedelta(days=1), f.tz),
            f"{answer.customer} promised to pay invoice {debt.label} "
            f"({_money(debt.amount - debt.cleared)}) on {day_text(answer.promised_for)}: "
            "the money has not cleared — chase again. A promise is not a payment.",
        )


def _promise_replaced(f: Facts, known: Known) -> bool:
    return all(
        f"i{a.invoice_id}@{a.promised_for.isoformat()}" != known.occurrence
        for a in _standing_promises(f)
    )


PROMISE_PASSED = Rule(
    kind=ReminderKind.PROMISE_PASSED,
    owner=REP,
    wants=_promise_passed,
    clock=lambda window: (
        CustomerResponse.objects.order_by()
        .filter(kind=ResponseKind.PROMISE)
        .filter(window.mornings("promised_for", lag=timedelta(days=1), rep="invoice__deal__rep"))
        .values_list("invoice__deal_id", flat=True)
    ),
    gone=(
        Gone(_invoice_covered, "Paid: cleared money covers the invoice."),
        Gone(_promise_replaced, "The customer promised a new date."),
    ),
)


def billing_rules() -> tuple[Rule, ...]:
    ladder = _ladder()
    rules = [
        CUSTOMER_SAYS_PAID,
        PROMISE_PASSED,
        EMAIL_BOUNCED,
        EXCEPTION_ASKED,
        EXCEPTION_DECIDED,
        INVOICE_CUTOFF,
        _bounced_rule(REP),
        _bounced_rule(MANAGER),
        _payment_rule(ReminderKind.PAYMENT_DUE, 0, REP),
    ]
    rules += [_payment_rule(ReminderKind.PAYMENT_OVERDUE, days, REP) for days in ladder]
    if ladder:  # past the last rung, the manager hears about it too
        rules.append(_payment_rule(ReminderKind.PAYMENT_OVERDUE, ladder[-1], MANAGER))
    # Each instalment of a payment plan is due and chased on its own.
    rules.append(_payment_rule(ReminderKind.PAYMENT_DUE, 0, REP, INSTALMENT))
    rules += [_payment_rule(ReminderKind.PAYMENT_OVERDUE, days, REP, INSTALMENT) for days in ladder]
    if ladder:
        rules.append(_payment_rule(ReminderKind.PAYMENT_OVERDUE, ladder[-1], MANAGER, INSTALMENT))
    return tuple(rules)
