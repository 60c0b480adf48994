"""The rules read from receivables: a customer email bounced or could not be sent,
and the customer's answers through their link ("I've paid", "I'll pay on …").

Facts (``reminders.rules.base.Facts``): ``bounced_emails`` (customer emails
refused for good), ``failed_emails`` (emails that could not be sent),
``invoice_emails`` (every invoice's email, which the invoice cut-off rule reads
too) and ``answers``, loaded by ``load`` in two queries; the answers are
checked against billing's ``invoices``.
"""

from datetime import UTC, date, timedelta

from django.db.models import F, Q

from billing.models import invoice_display_number
from pipeline.compiled import Compiled, InBatch
from pipeline.terms import money_text
from receivables.models import CustomerEmail, CustomerResponse, EmailKind, EmailState, ResponseKind
from reminders.models import ReminderKind
from reminders.rules.base import (
    REP,
    Facts,
    Gone,
    Known,
    Rule,
    Want,
    Window,
    day_text,
    morning_of,
)
from reminders.rules.records import Answer, Debt, Email

# Built once (``pipeline.compiled``): the batch's ids are each query's one parameter.
_EMAILS = Compiled(
    lambda: CustomerEmail.objects.order_by()
    .filter(
        Q(kind=EmailKind.INVOICE)
        | Q(state__in=(EmailState.BOUNCED, EmailState.FAILED), settled_at__isnull=False),
        InBatch(F("deal_id"), "ids"),
    )
    .values_list(
        "deal_id", "id", "settled_at", "to_address", "kind", "invoice__number", "invoice_id",
        "state", "next_attempt_at", "sent_at", "outcome",
    )
)  # fmt: skip
_ANSWERS = Compiled(
    lambda: CustomerResponse.objects.order_by("created_at", "id")
    .filter(InBatch(F("invoice__deal_id"), "ids"))
    .values_list(
        "invoice__deal_id", "id", "kind", "invoice_id", "reference", "promised_for",
        "created_at", "invoice__deal__customer__name",
    )
)  # fmt: skip


def load(facts: dict[int, Facts]) -> None:
    """The batch's invoice emails, emails bounced or failed, and the customer's answers."""
    ids = list(facts)
    for deal_id, *fields in _EMAILS.rows(ids=ids):
        email = Email(*fields)
        if email.state == EmailState.BOUNCED:
            facts[deal_id].bounced_emails.append(email)
        if email.state == EmailState.FAILED:
            facts[deal_id].failed_emails.append(email)
        if email.kind == EmailKind.INVOICE:
            facts[deal_id].invoice_emails.append(email)
    for deal_id, *fields in _ANSWERS.rows(ids=ids):
        facts[deal_id].answers.append(Answer(*fields))


# --- a customer email bounced, or could not be sent -------------------------------------
# The mail server refused the customer's address for good (``receivables.sending``):
# the rep corrects it (occurrence ``e<email id>``). An email that could not be sent
# at all (``failed``: a value no email can carry, or every retry refused) tells the
# rep too (occurrence ``f<email id>``): it failed alone, the others went.


def _email_words(email: Email) -> str:
    what = "the invoice" if email.kind == "invoice" else "a payment reminder"
    number = (
        f", invoice {invoice_display_number(email.invoice_number)}" if email.invoice_number else ""
    )
    return f"An email to {email.to_address} ({what}{number})"


def _email_bounced(f: Facts, window: Window):
    for email in f.bounced_emails:
        yield Want(
            f"e{email.id}",
            email.settled_at,
            f"{_email_words(email)} bounced: the address is refused for good. "
            "Correct the customer's billing email, then send it again.",
        )
    for email in f.failed_emails:
        yield Want(
            f"f{email.id}",
            email.settled_at,
            f"{_email_words(email)} could not be sent ({email.outcome[:120]}). Check the "
            "customer's details and the wording, then send it again.",
        )


def _new_address(f: Facts, known: Known) -> bool:
    return known.occurrence.startswith("e") and f.billing_email_bounced_at is None


def _asked_again(f: Facts, known: Known) -> bool:
    failed = {f"f{email.id}" for email in f.failed_emails}
    return known.occurrence.startswith("f") and known.occurrence not in failed


def _undelivered(state: str):
    # One query per state, each on its partial index's terms where there is one.
    return lambda window: (
        CustomerEmail.objects.order_by()
        .filter(state=state, deal__isnull=False, settled_at__gt=window.since)
        .filter(settled_at__lte=window.horizon)
        .values_list("deal_id", flat=True)
    )


EMAIL_BOUNCED = Rule(
    kind=ReminderKind.EMAIL_BOUNCED,
    owner=REP,
    wants=_email_bounced,
    gone=(
        Gone(_new_address, "A new billing address was entered."),
        Gone(_asked_again, "The email was asked for again."),
    ),
    hovers=False,  # each bounce is news
)


# --- the customer's answers through their link (receivables/links.py) ---------------------
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
            f"({money_text(debt.amount - debt.cleared)}) is paid{quoted}: check that the money "
            "came in — only cleared money counts.",
        )


CUSTOMER_SAYS_PAID = Rule(
    kind=ReminderKind.CUSTOMER_SAYS_PAID,
    owner=REP,
    wants=_says_paid,
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


def promise_standing(f: Facts, invoice_id: int, day) -> Answer | None:
    """The customer's standing promise on an unpaid invoice that covers ``day``: the
    promised day or the morning after it, when the promise-passed reminder speaks.

    A payment due, overdue rung or "chase again" next step falling on such a
    day is the promise's to say: hover, don't smother (one reminder, not three).
    """
    if _unpaid_invoice(f, invoice_id) is None:
        return None
    return next(
        (
            a
            for a in _standing_promises(f)
            if a.invoice_id == invoice_id and day <= a.promised_for + timedelta(days=1)
        ),
        None,
    )


def promise_carries_next_step(f: Facts) -> bool:
    """The deal's next step is the "chase again" a promise set (``links._touch_for``):
    the promise-passed reminder says it, so the next step does not say it again."""
    if f.next_step_date is None:
        return False
    return any(
        a.promised_for + timedelta(days=1) == f.next_step_date
        and _unpaid_invoice(f, a.invoice_id) is not None
        for a in _standing_promises(f)
    )


def _customer_promised(f: Facts, window: Window):
    for answer in _standing_promises(f):
        debt = _unpaid_invoice(f, answer.invoice_id)
        passed = morning_of(answer.promised_for + timedelta(days=1), f.tz)
        if debt is None or window.now >= passed:
            continue
        yield Want(
            f"i{answer.invoice_id}@{answer.promised_for.isoformat()}",
            answer.created_at,
            f"{answer.customer} promised, through their link, to pay invoice {debt.label} "
            f"({money_text(debt.amount - debt.cleared)}) on {day_text(answer.promised_for)}. "
            "If the money has not cleared the morning after, Cleared says so.",
        )


def _promise_due(f: Facts, known: Known) -> bool:
    """The promised day is over: the promise-passed reminder takes over."""
    day = date.fromisoformat(known.occurrence.partition("@")[2])
    return f.now is not None and f.now >= morning_of(day + timedelta(days=1), f.tz)


def _promised_days_ending(f: Facts, window: Window):
    """Its reminder is resolved, and no longer wanted, the morning after the promised day."""
    return (morning_of(a.promised_for + timedelta(days=1), f.tz) for a in _standing_promises(f))


def _promise_passed(f: Facts, window: Window):
    for answer in _standing_promises(f):
        debt = _unpaid_invoice(f, answer.invoice_id)
        if debt is None:
            continue
        passed = answer.promised_for + timedelta(days=1)
        late = (passed - debt.due_date).days
        lateness = f", {late} day{'' if late == 1 else 's'} late" if late > 0 else ""
        yield Want(
            f"i{answer.invoice_id}@{answer.promised_for.isoformat()}",
            # The morning after: on the promised day itself the money may still come.
            morning_of(passed, f.tz),
            f"{answer.customer} promised to pay invoice {debt.label} "
            f"({money_text(debt.amount - debt.cleared)}) on {day_text(answer.promised_for)}; "
            f"it was due {day_text(debt.due_date)}{lateness}: the money has not cleared — "
            "chase again. A promise is not a payment.",
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
    gone=(
        Gone(_invoice_covered, "Paid: cleared money covers the invoice."),
        Gone(_promise_replaced, "The customer promised a new date."),
    ),
)


# Told at once: the customer's link page says "Riley has been told", and now Riley is.
CUSTOMER_PROMISED = Rule(
    kind=ReminderKind.CUSTOMER_PROMISED,
    owner=REP,
    wants=_customer_promised,
    wakes=_promised_days_ending,
    gone=(
        Gone(_invoice_covered, "Paid: cleared money covers the invoice."),
        Gone(_promise_replaced, "The customer promised a new date."),
        Gone(_promise_due, "The promised day passed: see “Payment promise passed”."),
    ),
    hovers=False,
)


RECEIVABLES_RULES: tuple[Rule, ...] = (
    CUSTOMER_SAYS_PAID,
    CUSTOMER_PROMISED,
    PROMISE_PASSED,
    EMAIL_BOUNCED,
)
