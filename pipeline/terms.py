"""Terms policy: learn from the past (DOMAIN.md, seed 001 tip 6).

Pure functions: a customer's payment history goes in, a standing and the terms
it requires come out. The payment options, the standings, the deposit a deal's
terms ask for and how Cleared rounds money belong to the pipeline: a deal is
promised on them. ``billing.selectors.customer_payment_history`` reads the
history from the ledger and billing keeps the copy on ``Customer.standing``;
``pipeline.selectors.customer_terms`` reads that copy. Everything here is
testable with made-up histories.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.functions import Coalesce

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# The type of a sum of amounts computed in SQL (wider than one amount's column).
MONEY = models.DecimalField(max_digits=14, decimal_places=2)


def money_sum(expression: str, **filter_kwargs) -> Coalesce:
    """``Sum(expression)`` over the rows matching ``filter_kwargs``, 0.00 when none."""
    condition = models.Q(**filter_kwargs) if filter_kwargs else None
    return Coalesce(
        models.Sum(expression, filter=condition), models.Value(ZERO), output_field=MONEY
    )


def money_text(value) -> str:
    """An amount as Cleared writes it everywhere (pages, emails, PDFs, call scripts,
    reminders): $1,250.00, −$20.00 below zero (the deployment's currency symbol),
    rounded to the cent half up; "—" when there is no amount."""
    if value is None or value == "":
        return "—"
    amount = Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "−" if amount < 0 else ""
    return f"{sign}{settings.CURRENCY_SYMBOL}{abs(amount):,.2f}"


def money_round(value: Decimal) -> Decimal:
    """Round an amount to the cent, half up: 1.005 → 1.01, 1.004 → 1.00.

    Cleared rounds every computed amount (a deposit percentage, a commission,
    an instalment) this one way, ROUND_HALF_UP, as a customer or a rep does on
    paper; banker's rounding would surprise them on exact halves.
    """
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


class Standing(models.TextChoices):
    NEW = "new", "New"
    GOOD = "good", "Good"
    SLOW = "slow", "Slow"


class PaymentOption(models.TextChoices):
    UPFRONT = "upfront", "Upfront — paid in full by card"
    ON_FILE = "on_file", "On file — card or account secured"
    INVOICE = "invoice", "Invoice — billed after delivery"


# Paying later than this on average makes a customer slow.
SLOW_AFTER_DAYS_LATE = Decimal("7")


@dataclass(frozen=True)
class PaymentHistory:
    paid_deals: int = 0
    average_days_late: Decimal | None = None
    recent_bounces: int = 0


@dataclass(frozen=True)
class Terms:
    standing: Standing
    reason: str
    allowed_options: tuple[str, ...]
    deposit_required_for: tuple[str, ...] = field(default=())
    # A manager's exception that changed these terms, in words ("" if none).
    exception: str = ""

    def allows(self, option: str) -> bool:
        return option in self.allowed_options

    def deposit_required(self, option: str) -> bool:
        return option in self.deposit_required_for

    def needs_exception_for(self, option: str) -> bool:
        """Refused now, but a manager's exception can lift it: invoicing a slow payer."""
        return (
            self.standing == Standing.SLOW
            and option == PaymentOption.INVOICE
            and not self.allows(option)
        )

    @property
    def summary(self) -> str:
        if self.standing == Standing.NEW:
            return "New customer: a deposit or upfront payment is required."
        if self.standing == Standing.GOOD:
            return "Good payer: any payment option; a deposit is optional."
        if self.allows(PaymentOption.INVOICE):
            return "Slow payer: invoicing allowed by a manager's exception, with a deposit."
        return "Slow payer: upfront or on file only; invoicing needs a manager's exception."

    @property
    def deposit_text(self) -> str:
        """What each allowed option asks as a stake, in words that agree with ``summary``.

        A good payer's invoice needs no deposit, so the deposit rule is named only
        for the options that require one.
        """
        secured = "upfront pays the whole amount at the close; on file secures the card or account"
        if not self.allows(PaymentOption.INVOICE):
            return f"Upfront or on file: {secured}."
        if self.deposit_required(PaymentOption.INVOICE):
            return f"On an invoice, a deposit of {self.deposit_rule} is required; {secured}."
        return f"On an invoice no deposit is required; {secured}."

    @property
    def deposit_rule(self) -> str:
        """How much deposit is asked for, in words, for the terms panel."""
        rule = deposit_rule()
        if rule.percent is not None:
            return f"{rule.percent.normalize():f}% of the amount"
        return f"{settings.CURRENCY_SYMBOL}{rule.fixed:,.2f}"


def standing_from_history(history: PaymentHistory) -> tuple[Standing, str]:
    """The customer's payment standing and the reason for it, in words."""
    if history.recent_bounces:
        bounces = "payment" if history.recent_bounces == 1 else "payments"
        return Standing.SLOW, f"{history.recent_bounces} {bounces} bounced recently."
    if history.paid_deals == 0:
        return Standing.NEW, "No paid deal yet."
    late = history.average_days_late
    if late is not None and late > SLOW_AFTER_DAYS_LATE:
        return Standing.SLOW, f"Pays {late:.0f} days late on average."
    deals = "deal" if history.paid_deals == 1 else "deals"
    return Standing.GOOD, f"{history.paid_deals} {deals} paid on time."


def terms_for(standing: Standing, reason: str = "", *, invoicing_exception: str = "") -> Terms:
    """The payment options a standing allows and when a deposit is required.

    Upfront is a deposit in itself (paid in full), and on file secures a card
    or account: both reach the Deposit stage. An invoice needs a deposit from
    a new customer, none from a good one, and is not allowed to a slow one —
    unless a manager granted an exception (``invoicing_exception``, the words
    shown to the rep): then a slow payer may be invoiced, deposit required.
    """
    every = tuple(PaymentOption.values)
    secured = (PaymentOption.UPFRONT, PaymentOption.ON_FILE)
    if standing == Standing.NEW:
        return Terms(standing, reason, every, deposit_required_for=every)
    if standing == Standing.GOOD:
        return Terms(standing, reason, every, deposit_required_for=secured)
    if invoicing_exception:
        return Terms(
            standing, reason, every, deposit_required_for=every, exception=invoicing_exception
        )
    return Terms(standing, reason, secured, deposit_required_for=secured)


@dataclass(frozen=True)
class DepositRule:
    """``CLEARED_DEPOSIT``: a percentage of the deal ("20%") or a fixed amount ("250.00")."""

    percent: Decimal | None = None
    fixed: Decimal | None = None


def parse_deposit_rule(raw: str) -> DepositRule:
    text = raw.strip()
    try:
        if text.endswith("%"):
            percent = Decimal(text[:-1].strip())
            if not 0 < percent <= 100:
                raise ValueError
            return DepositRule(percent=percent)
        fixed = Decimal(text)
        if fixed <= 0 or fixed != fixed.quantize(CENT):
            raise ValueError
        return DepositRule(fixed=fixed)
    except (InvalidOperation, ValueError):
        raise ImproperlyConfigured(
            f"CLEARED_DEPOSIT={raw!r} is neither a percentage (20%) nor an amount (250.00)."
        ) from None


def deposit_rule() -> DepositRule:
    return parse_deposit_rule(settings.CLEARED_DEPOSIT)


def deposit_amount(amount: Decimal, payment_option: str) -> Decimal:
    """The money that puts the customer's stake in (DOMAIN.md, Deposit).

    Upfront: the whole amount (paid in full at the close). On file: nothing —
    the stake is the card or account secured. Invoice: the deposit rule from
    settings, rounded half up to the cent and never more than the deal.
    """
    if payment_option == PaymentOption.UPFRONT:
        return amount
    if payment_option == PaymentOption.ON_FILE:
        return ZERO
    rule = deposit_rule()
    if rule.percent is not None:
        return min(amount, money_round(amount * rule.percent / 100))
    return min(amount, rule.fixed)
