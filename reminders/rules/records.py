"""The records each app's loader adds to a deal's ``Facts``: plain, frozen rows
read in a few queries per batch (``reminders.rules.audits.load``,
``reminders.rules.billing.load``)."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class AuditFact:
    id: int
    state: str
    next_call_at: datetime | None
    call_window_start: datetime
    call_window_end: datetime
    no_answer_count: int


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
    """An email to the customer (receivables.CustomerEmail): an invoice's, or one that bounced."""

    id: int
    settled_at: datetime | None
    to_address: str
    kind: str
    invoice_number: int | None
    invoice_id: int | None
    state: str
    next_attempt_at: datetime
    sent_at: datetime | None
    outcome: str = ""


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


@dataclass(frozen=True)
class Pending:
    """A payment recorded and not cleared yet (a check in the post, a transfer on its way)."""

    id: int
    amount: Decimal
    method: str
    reference: str
    recorded_at: datetime
    # Recorded by the card processor: the customer is paying online (online/).
    online: bool = False
