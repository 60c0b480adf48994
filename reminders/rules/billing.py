"""The rules read from billing: payment bounced, payment due and the overdue
ladder (invoices and instalments), invoice cut-off, and "Ask my manager"
(an exception asked, then decided).

Facts (``reminders.rules.base.Facts``): ``bounces``, ``invoices`` (not void,
with the cleared money that pays each), ``instalments`` (the same),
``invoiced`` (the sum of the invoices), ``paid_without_invoice`` (money in with
no invoice, such as a deposit), ``requests`` (exception requests),
``bounced_emails`` (customer emails refused for good), ``invoice_emails`` and
``answers`` (what the customer said through their link), loaded by ``load`` in
seven queries."""

import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef

from billing.models import (
    LIVE_STATUSES,
    EventSource,
    ExceptionKind,
    ExceptionRequest,
    Instalment,
    Invoice,
    Payment,
    PaymentEvent,
    PaymentStatus,
    RequestState,
    invoice_display_number,
    paid_against,
)
from billing.policy import invoice_deadline, left_to_invoice
from pipeline.compiled import Compiled, InBatch
from pipeline.stages import Stage
from pipeline.terms import PaymentOption, money_text
from receivables.models import EmailState
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
    local_day,
    morning_of,
    person_text,
    setting_days,
)
from reminders.rules.receivables import promise_standing
from reminders.rules.records import Answer, Bounce, Debt, Pending, Request

# The loader's queries, each built once (``pipeline.compiled``): the batch's ids
# are their one parameter.
_BOUNCES = Compiled(
    lambda: (
        PaymentEvent.objects.order_by()
        .filter(
            InBatch(F("payment__deal_id"), "ids"),
            to_status__in=[PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK],
        )
        .values_list("payment__deal_id", "payment_id", "at", "to_status", "payment__amount")
    )
)
_INVOICES = Compiled(
    lambda: (
        Invoice.objects.order_by()
        .filter(InBatch(F("deal_id"), "ids"), voided_at__isnull=True)
        .annotate(paid=paid_against("invoice"))
        .values_list("deal_id", "id", "number", "amount", "due_date", "paid")
    )
)
# The live payments, once for two facts: money in without an invoice (the
# cut-off's "left to invoice") and payments still pending (reminders.rules.pending).
_LIVE = Compiled(
    lambda: Payment.objects.order_by()
    .filter(InBatch(F("deal_id"), "ids"), status__in=LIVE_STATUSES)
    .annotate(online=Exists(PaymentEvent.objects.filter(
        payment=OuterRef("pk"), to_status=PaymentStatus.PENDING, source=EventSource.WEBHOOK
    )))
    .values_list(
        "deal_id", "id", "invoice_id", "status", "amount", "method", "reference", "recorded_at",
        "online",
    )
)  # fmt: skip
_INSTALMENTS = Compiled(
    lambda: (
        Instalment.objects.order_by()
        .filter(InBatch(F("plan__deal_id"), "ids"))
        .annotate(paid=paid_against("instalment"))
        .values_list("plan__deal_id", "id", "sequence", "amount", "due_date", "paid")
    )
)
_REQUESTS = Compiled(
    lambda: ExceptionRequest.objects.order_by()
    .filter(InBatch(F("deal_id"), "ids"))
    .values_list(
        "deal_id", "id", "kind", "state", "reason", "asked_at", "decided_at",
        "decided_by_id", "decision_note", "rep__first_name", "rep__last_name",
        "rep__username", "decided_by__first_name", "decided_by__last_name",
        "decided_by__username",
    )
)  # fmt: skip


def load(facts: dict[int, Facts]) -> None:
    """Bounces, invoices, live payments, instalments and exception requests of the
    batch's deals."""
    ids = list(facts)
    for deal_id, *fields in _BOUNCES.rows(ids=ids):
        facts[deal_id].bounces.append(Bounce(*fields))
    for deal_id, pk, number, amount, due_date, paid in _INVOICES.rows(ids=ids):
        label = invoice_display_number(number)  # "INV-00009", as everywhere
        facts[deal_id].invoices.append(Debt(pk, label, amount, due_date, paid))
        facts[deal_id].invoiced += amount
    for deal_id, pk, invoice_id, status, amount, *pending in _LIVE.rows(ids=ids):
        if invoice_id is None:
            facts[deal_id].paid_without_invoice += amount
        if status == PaymentStatus.PENDING:
            facts[deal_id].pending.append(Pending(pk, amount, *pending))
    for deal_id, *fields in _INSTALMENTS.rows(ids=ids):
        facts[deal_id].instalments.append(Debt(*fields))
    for deal_id, *fields, rf, rl, ru, df, dl, du in _REQUESTS.rows(ids=ids):
        rep_name = person_text(rf, rl, ru, "Your rep")
        facts[deal_id].requests.append(
            Request(*fields, rep_name, person_text(df, dl, du, "Your manager"))
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
                f"A payment of {money_text(bounce.amount)} {verb} on {day_text(bounce.at)}: "
                "the deal is not paid — ask for the money again.",
            )

    return Rule(
        kind=ReminderKind.PAYMENT_BOUNCED,
        owner=owner,
        wants=wants,
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
    prefix: str
    noun: str

    def name(self, debt: Debt) -> str:
        if self.model is Invoice:
            return f"Invoice {debt.label}"
        return f"Instalment {debt.label} of the payment plan"


INVOICE = Owed(Invoice, "invoices", "i", "invoice")
INSTALMENT = Owed(Instalment, "instalments", "n", "instalment")


def _payment_rule(kind: str, days: int, owner: str, owed: Owed = INVOICE) -> Rule:
    """Payment due (``days`` = 0) or a rung of the overdue ladder (+``days``)."""
    rung = "" if days == 0 else f"+{days}" + ("/manager" if owner == MANAGER else "")
    lag = timedelta(days=days)
    mine = re.compile(rf"{owed.prefix}\d+{re.escape(rung)}")

    def wants(f: Facts, window: Window):
        for debt in getattr(f, owed.facts):
            if not debt.unpaid or _promised(f, debt, lag):
                continue
            left = money_text(debt.amount - debt.cleared)
            if days == 0:
                due = day_text(debt.due_date)
                why = f"{owed.name(debt)} ({left}) is due {due}: ask for the money."
            else:
                why = (
                    f"{owed.name(debt)} ({left}) was due {day_text(debt.due_date)}, "
                    f"{days} days ago: ask for the money — avoiding it does not work."
                )
            yield Want(f"{owed.prefix}{debt.id}{rung}", morning_of(debt.due_date + lag, f.tz), why)

    def paid(f: Facts, known: Known) -> bool:
        return not any(
            debt.unpaid and f"{owed.prefix}{debt.id}{rung}" == known.occurrence
            for debt in getattr(f, owed.facts)
        )

    def promised(f: Facts, known: Known) -> Answer | None:
        return next(
            (
                answer
                for debt in getattr(f, owed.facts)
                if f"{owed.prefix}{debt.id}{rung}" == known.occurrence
                and (answer := _promised(f, debt, lag))
            ),
            None,
        )

    def promised_words(f: Facts, known: Known) -> str:
        answer = promised(f, known)
        day = day_text(answer.promised_for) if answer else "a later day"
        return (
            f"The customer promised to pay on {day}: if the money is not in the morning "
            "after, one reminder says so."
        )

    return Rule(
        kind=kind,
        owner=owner,
        wants=wants,
        owns=lambda occurrence: mine.fullmatch(occurrence) is not None,
        gone=(
            Gone(paid, f"Paid: cleared money covers the {owed.noun}."),
            Gone(lambda f, known: promised(f, known) is not None, promised_words),
        ),
        ends_with_deal=False,  # paid is how it ends; a lost deal's debt is still owed
    )


def _promised(f: Facts, debt: Debt, lag: timedelta) -> Answer | None:
    """An invoice's rung falling on a day the customer's promise covers: the promise's
    reminders speak for it (one reminder, not three)."""
    if not any(d is debt for d in f.invoices):
        return None
    return promise_standing(f, debt.id, debt.due_date + lag)


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


def _left_to_invoice(f: Facts):
    return left_to_invoice(f.amount, f.invoiced, f.paid_without_invoice)


def _invoice_cutoff(f: Facts, window: Window):
    """The customer's next cut-off, from today on: one reminder per deal and cut-off,
    while something is left to invoice or an invoice is not on its way.

    The day is ``billing.policy.invoice_deadline``'s (the money note and the
    invoice page name the same one): the morning ``REMINDERS_INVOICE_CUTOFF_DAYS``
    before the cut-off, in the month before for a cut-off early in the month.
    A cut-off already past is never named: the next one is.
    """
    if f.cutoff_day is None or f.stage not in (Stage.AUDIT_CONFIRMED, Stage.DELIVERED):
        return
    if f.payment_option != PaymentOption.INVOICE:
        return
    deadline = invoice_deadline(f.cutoff_day, local_day(window.now, f.tz), _cutoff_lead().days)
    left = _left_to_invoice(f)
    if left > 0:
        what = f"send the invoice ({money_text(left)} not invoiced)"
    elif unsent := _unsent_invoices(f):
        what = f"email invoice {', '.join(d.label for d in unsent)} (or schedule it)"
    else:
        return
    yield Want(
        deadline.cutoff.isoformat(),
        morning_of(deadline.send_by, f.tz),
        f"The customer's accounting cut-off is {day_text(deadline.cutoff)}: {what} "
        "so it makes their payment run.",
    )


def _next_cutoff_named(f: Facts, window: Window):
    """The cut-off it names moves to the next one the day after it (by that morning)."""
    if f.cutoff_day is None or f.payment_option != PaymentOption.INVOICE:
        return
    if f.stage in (Stage.AUDIT_CONFIRMED, Stage.DELIVERED):
        deadline = invoice_deadline(f.cutoff_day, local_day(window.now, f.tz), _cutoff_lead().days)
        yield morning_of(deadline.cutoff + timedelta(days=1), f.tz)


def _invoice_on_its_way(f: Facts, known: Known) -> bool:
    return _left_to_invoice(f) <= 0 and not _unsent_invoices(f)


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


INVOICE_CUTOFF = Rule(
    kind=ReminderKind.INVOICE_CUTOFF,
    owner=REP,
    wants=_invoice_cutoff,
    wakes=_next_cutoff_named,
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
    # The rep marks it done; a paid deal is no reason to hide the answer.
    ends_with_deal=False,
    hovers=False,
)


def billing_rules() -> tuple[Rule, ...]:
    ladder = _ladder()
    rules = [
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
