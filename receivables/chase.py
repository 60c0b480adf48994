"""The polite chase: the rungs of the overdue ladder and the words of each rung's email.

Pure functions (seed 001, tips 4-5: ask for the money; avoiding it does not
work). A rung is a number of days after the due date: 0 (due today), then
``REMINDERS_PAYMENT_LADDER_DAYS`` (+7, +14, +30). Each rung's email is firmer
than the one before; the last one goes only once a manager approves it.
"""

import re
from dataclasses import dataclass
from datetime import date

from django.conf import settings

PLACEHOLDERS: dict[str, str] = {
    "customer": "the customer's name (their company when set)",
    "invoice_number": "the invoice's number",
    "amount_due": "what is still owed on it",
    "due_date": "its due date",
    "days_overdue": "days since it fell due",
    "rep_name": "the rep's name",
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def rungs() -> list[int]:
    """The chase's rungs, in days after the due date: due today, then the ladder."""
    ladder = {int(day) for day in settings.REMINDERS_PAYMENT_LADDER_DAYS if int(day) > 0}
    return [0, *sorted(ladder)]


def last_rung() -> int:
    return rungs()[-1]


def is_last_rung(rung: int) -> bool:
    """The last rung needs a manager's approval before it goes (never auto-sent)."""
    return len(rungs()) > 1 and rung == last_rung()


def rung_label(rung: int, days_late: int = 0) -> str:
    """ "Due today", "+7 days"; the first rung sent late says how late: "2 days late"."""
    if rung == 0 and days_late > 0:
        return f"{days_late} day{'' if days_late == 1 else 's'} late"
    return "Due today" if rung == 0 else f"+{rung} days"


def current_rung(due_date: date, today: date) -> int | None:
    """The rung an unpaid invoice has reached today; None before its due date."""
    reached = [rung for rung in rungs() if (today - due_date).days >= rung]
    return reached[-1] if reached else None


@dataclass(frozen=True)
class Wording:
    subject: str
    body: str


# The sane defaults, firmer at each rung (a manager rewrites them on the Chasing page).
_FRIENDLY = Wording(
    "Invoice {invoice_number} is due today",
    "Hello {customer},\n\n"
    "A friendly note: invoice {invoice_number} for {amount_due} is due today, {due_date}. "
    "If it is already on its way, thank you, and please ignore this email.\n\n"
    "If anything on the invoice is unclear, just reply and I will sort it out.\n\n"
    "Kind regards,\n{rep_name}",
)
# The first rung, sent after its day (a promise that passed, a chase found late): the
# friendly words, true on the day they go.
_FRIENDLY_LATE = Wording(
    "Invoice {invoice_number} was due on {due_date}",
    "Hello {customer},\n\n"
    "A friendly note: invoice {invoice_number} for {amount_due} was due on {due_date}, "
    "{days_overdue} days ago, and we have not received the payment yet. If it is already "
    "on its way, thank you, and please ignore this email.\n\n"
    "If anything on the invoice is unclear, just reply and I will sort it out.\n\n"
    "Kind regards,\n{rep_name}",
)
_FIRMER = Wording(
    "Invoice {invoice_number} is {days_overdue} days overdue",
    "Hello {customer},\n\n"
    "Invoice {invoice_number} for {amount_due} fell due on {due_date} and we have not "
    "received the payment yet. Could you let me know when it will be paid?\n\n"
    "The invoice is attached again for your accounts team.\n\n"
    "Kind regards,\n{rep_name}",
)
_CALL = Wording(
    "Invoice {invoice_number}: can we talk this week?",
    "Hello {customer},\n\n"
    "Invoice {invoice_number} for {amount_due} is now {days_overdue} days past its due date "
    "({due_date}). I would like to make sure nothing is holding it up: could we have a short "
    "call this week? Reply with a time that suits you, or call me directly.\n\n"
    "If the payment is difficult right now, we can agree a plan together.\n\n"
    "Kind regards,\n{rep_name}",
)
_LAST = Wording(
    "Final reminder: invoice {invoice_number}, {amount_due} overdue",
    "Hello {customer},\n\n"
    "Despite our earlier reminders, invoice {invoice_number} for {amount_due}, due on "
    "{due_date}, is still unpaid {days_overdue} days later.\n\n"
    "Please arrange the payment within 7 days, or contact me today so we can agree how it "
    "will be settled. Otherwise we will have to take further steps to recover it.\n\n"
    "Regards,\n{rep_name}",
)


def default_wording(rung: int, days_late: int = 0) -> Wording:
    """The default email of a rung: friendly, firmer, a call, then the last word.

    The friendly one sent ``days_late`` days after the due date says so: never
    "is due today" for an invoice two days late."""
    order = rungs()
    if rung not in order:
        raise ValueError(f"Not a rung of the ladder: {rung}")
    if rung == 0:
        return _FRIENDLY_LATE if days_late > 0 else _FRIENDLY
    if is_last_rung(rung):
        return _LAST
    return _FIRMER if order.index(rung) == 1 else _CALL


def unknown_placeholders(text: str) -> list[str]:
    """Placeholders in ``text`` that are not in ``PLACEHOLDERS``, in order."""
    return [name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS]


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with each known ``{placeholder}`` replaced; nothing else is evaluated.

    A plain substitution, not ``str.format``: a template cannot reach
    attributes (``{customer.__class__}`` stays as typed).
    """
    return _PLACEHOLDER.sub(lambda match: values.get(match[1], match[0]), text)


# What the Chasing page's preview fills the placeholders with: an example invoice.
SAMPLE_VALUES: dict[str, str] = {
    "customer": "Northwind Traders",
    "invoice_number": "INV-00042",
    "amount_due": "$1,250.00",
    "due_date": "1 March 2026",
    "days_overdue": "7",
    "rep_name": "Sam Rep",
}
