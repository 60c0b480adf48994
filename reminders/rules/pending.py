"""A payment stuck in "pending": a check recorded weeks ago that nobody cleared or
bounced holds the chase back (money on its way counts as received) and nobody is
told. After ``CLEARED_PENDING_DAYS`` the rep is; after twice as long, the manager
too. One reminder per payment and person (occurrence ``p<payment id>`` and
``p<payment id>/manager``); clearing or bouncing it resolves them. A payment the
customer is making online (recorded by the card processor) tells the rep at once
(``p<payment id>/online``: "the customer is paying online").

Facts (``reminders.rules.base.Facts``): ``pending``, loaded with the live payments by
``reminders.rules.billing.load`` (the same query as the money paid without an invoice).
"""

from datetime import timedelta

from django.conf import settings

from pipeline.terms import money_text
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
    short_day_text,
)


def _after(owner: str) -> timedelta:
    days = settings.CLEARED_PENDING_DAYS
    return timedelta(days=days * 2 if owner == MANAGER else days)


def _pending_rule(owner: str) -> Rule:
    suffix = "/manager" if owner == MANAGER else ""
    after = _after(owner)

    def wants(f: Facts, window: Window):
        for payment in f.pending:
            since = short_day_text(payment.recorded_at.date())
            days = (window.now - payment.recorded_at).days
            reference = f" ({payment.reference[:40]})" if payment.reference else ""
            who = "Clear it or bounce it" if owner == MANAGER else "Check with the bank"
            yield Want(
                f"p{payment.id}{suffix}",
                payment.recorded_at + after,
                f"A {payment.method.replace('_', ' ')} of {money_text(payment.amount)}"
                f"{reference} has been pending since {since} ({max(days, after.days)} days): "
                f"{who} — while it is pending the invoice is not chased.",
            )

    def settled(f: Facts, known: Known) -> bool:
        return all(f"p{p.id}{suffix}" != known.occurrence for p in f.pending)

    return Rule(
        kind=ReminderKind.PAYMENT_PENDING,
        owner=owner,
        wants=wants,
        owns=lambda occurrence: (
            occurrence.endswith("/manager")
            if owner == MANAGER
            else not occurrence.endswith(("/manager", "/online"))
        ),
        gone=(Gone(settled, "The payment cleared or bounced."),),
        ends_with_deal=False,  # a pending payment on a lost deal is still money to settle
    )


def _paying_online_wants(f: Facts, window: Window):
    for payment in f.pending:
        if payment.online:
            yield Want(
                f"p{payment.id}/online",
                payment.recorded_at,
                f"The customer is paying online: {money_text(payment.amount)} by card"
                f" ({payment.reference[:60]}). Nothing to do — the card processor's answer "
                "clears or bounces it.",
            )


# The customer is paying online (online/): the rep hears at once, and the reminder
# goes when the processor's answer clears or bounces the payment.
PAYING_ONLINE_RULE = Rule(
    kind=ReminderKind.PAYMENT_PENDING,
    owner=REP,
    wants=_paying_online_wants,
    owns=lambda occurrence: occurrence.endswith("/online"),
    gone=(
        Gone(
            lambda f, known: all(f"p{p.id}/online" != known.occurrence for p in f.pending),
            "The card processor answered: the payment cleared or bounced.",
        ),
    ),
    ends_with_deal=False,
    hovers=False,
)

PENDING_RULES: tuple[Rule, ...] = (
    _pending_rule(REP),
    _pending_rule(MANAGER),
    PAYING_ONLINE_RULE,
)
