"""Terms policy: learn from the past (DOMAIN.md, seed 001 tip 6).

Pure functions: a customer's payment history goes in, a standing and the terms
it requires come out. ``billing.selectors.customer_payment_history`` reads the
history from the database; everything here is testable with made-up histories.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import models


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

    def allows(self, option: str) -> bool:
        return option in self.allowed_options

    def deposit_required(self, option: str) -> bool:
        return option in self.deposit_required_for

    @property
    def summary(self) -> str:
        if self.standing == Standing.NEW:
            return "New customer: a deposit or upfront payment is required."
        if self.standing == Standing.GOOD:
            return "Good payer: any payment option; a deposit is optional."
        return "Slow payer: upfront or on file only; invoicing needs a manager's exception."


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


def terms_for(standing: Standing, reason: str = "") -> Terms:
    """The payment options a standing allows and when a deposit is required.

    Upfront is a deposit in itself (paid in full), and on file secures a card
    or account: both reach the Deposit stage. An invoice needs a deposit from
    a new customer, none from a good one, and is not allowed to a slow one.
    """
    every = tuple(PaymentOption.values)
    secured = (PaymentOption.UPFRONT, PaymentOption.ON_FILE)
    if standing == Standing.NEW:
        return Terms(standing, reason, every, deposit_required_for=every)
    if standing == Standing.GOOD:
        return Terms(standing, reason, every, deposit_required_for=secured)
    return Terms(standing, reason, secured, deposit_required_for=secured)
