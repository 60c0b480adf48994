"""Terms are frozen by the audit (DOMAIN.md, "Terms are frozen by the audit").

What the auditor confirmed with the customer (``TERMS_FIELDS``) is edited
freely before the audit is confirmed. After it, a change of terms is either
**sent back to audit** (saved, and the deal returns to the audit path for a
new wrap-up: the customer confirms the new terms) or **asked of the rep's
manager** with a reason (applied only when the manager approves, from the
reminder the request makes). A deal paid upfront by card has no audit: its
terms freeze once money is received, and only the manager can change them.
Invoices already issued are never changed: a new amount on a deal with a
live invoice is refused until it is voided (billing registers that check,
``register_amount_guard``). Every change is a ``TermsChange`` row on the
deal's timeline.

The rules are here; the writes are ``pipeline.services.deal_update`` (every
edit) and ``pipeline.services.terms_change_decide`` (the manager's answer).
"""

from collections.abc import Callable
from decimal import Decimal

from pipeline.models import Deal
from pipeline.stages import IllegalMove, Stage
from pipeline.terms import PaymentOption
from pipeline.terms_history import TermsPath

# The deal's terms: what the customer agreed to and the auditor confirmed.
TERMS_FIELDS = {
    "amount": "Amount",
    "payment_option": "Payment option",
    "title": "What is sold",
    "customer": "Customer",
    "expected_delivery_date": "Delivery date",
}

# The rep's choice on the edit form once the terms are frozen.
BACK_TO_AUDIT, ASK_MANAGER = TermsPath.BACK_TO_AUDIT.value, TermsPath.MANAGER.value


class TermsFrozen(IllegalMove):
    """The terms changed after they froze and the rep has not said which way to go."""


class TermsReasonMissing(IllegalMove):
    """A change of frozen terms without a reason."""


class AmountRefused(IllegalMove):
    """A new amount an issued invoice or the money received forbids."""


class TermsChangeDecided(IllegalMove):
    """Someone decided this request already; nothing was written."""


# --- when the terms are frozen ------------------------------------------------------


def terms_frozen_by(deal: Deal) -> str:
    """Why the deal's terms can no longer be edited freely ("" while they can)."""
    if deal.needs_audit and deal.audit_passed:
        return "the audit confirmed them with the customer"
    if not deal.needs_audit and deal.received_amount > 0:
        return "the customer paid upfront on them"
    return ""


def may_send_back_to_audit(deal: Deal) -> bool:
    """Only an audited deal not delivered yet can be audited again."""
    return deal.needs_audit and deal.stage == Stage.AUDIT_CONFIRMED


def terms_choices(deal: Deal) -> list[tuple[str, str]]:
    """The ways a frozen deal's terms can change, each with its consequence said."""
    choices = []
    if may_send_back_to_audit(deal):
        choices.append(
            (
                BACK_TO_AUDIT,
                "Send back to audit: the change is saved now and the deal goes back to "
                "the audit path. Wrap it up again: an auditor confirms the new terms "
                "with the customer before delivery.",
            )
        )
    choices.append(
        (
            ASK_MANAGER,
            "Ask my manager: nothing changes until your manager approves; the rest of "
            "the edit is saved now.",
        )
    )
    return choices


# --- what changed -------------------------------------------------------------------


def _as_text(name: str, value) -> str:
    if value is None:
        return ""
    if name == "customer":
        return str(getattr(value, "pk", value))
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _shown(name: str, value) -> str:
    """A value as the timeline shows it."""
    if name == "amount":
        return f"{Decimal(value):,.2f}"
    if name == "payment_option":
        return PaymentOption(value).label if value in PaymentOption.values else value
    if name == "customer":
        return str(value) if not hasattr(value, "name") else value.name
    return str(value)


def terms_diff(deal: Deal, fields: dict) -> dict:
    """The terms ``fields`` would change on ``deal``: ``{name: {label, from, to, …}}``."""
    diff = {}
    for name, label in TERMS_FIELDS.items():
        if name not in fields:
            continue
        before = getattr(deal, name)
        after = fields[name]
        if _as_text(name, before) == _as_text(name, after):
            continue
        diff[name] = {
            "label": label,
            "from": _as_text(name, before),
            "to": _as_text(name, after),
            "from_text": _shown(name, before),
            "to_text": _shown(name, after),
        }
    return diff


# --- checks every path shares ------------------------------------------------------

# Billing says why a deal's amount cannot change now (a live invoice), or "":
# registered from its AppConfig.ready() (pipeline never imports billing).
amount_guards: list[Callable[[Deal], str]] = []


def register_amount_guard(guard: Callable[[Deal], str]) -> None:
    if guard not in amount_guards:
        amount_guards.append(guard)


def check_amount(deal: Deal, amount: Decimal) -> None:
    """Refuse a new amount an issued invoice or the money received forbids.

    The one check of every path (free, back to audit, approved by the manager).
    """
    if amount == deal.amount:
        return
    for guard in amount_guards:
        if refusal := guard(deal):
            raise AmountRefused(refusal)
    received = deal.received_amount
    if amount < received:
        raise AmountRefused(
            f"The amount can't be less than the {received:,.2f} already received "
            "on this deal (pending or cleared)."
        )


def back_to_audit_stage(deal: Deal) -> Stage:
    """Where a deal sent back to audit waits for its new wrap-up: Deposit when its
    terms require one (it was paid on the way), else Promised."""
    return Stage.DEPOSIT if deal.deposit_required else Stage.PROMISED


def diff_values(diff: dict) -> dict:
    """The new values of a stored diff, as the deal's columns take them."""
    values = {}
    for name, change in diff.items():
        if name == "customer":
            values["customer_id"] = int(change["to"])
        else:
            values[name] = Deal._meta.get_field(name).to_python(change["to"])
    return values


def diff_still_applies(deal: Deal, diff: dict) -> bool:
    """Every field still holds the value the change was asked from."""
    for name, change in diff.items():
        current = deal.customer_id if name == "customer" else getattr(deal, name)
        if _as_text(name, current) != change["from"]:
            return False
    return True
