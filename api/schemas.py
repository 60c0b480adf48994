"""What the API reads and answers, typed (the OpenAPI schema is made from these).

Amounts are decimal strings ("1250.00"), never floats. Inputs are loose on
purpose (strings, mostly optional): the pages' own forms validate them, so a
program gets the same messages, field by field, as a person in the browser.
"""

from datetime import date, datetime
from decimal import Decimal

from ninja import Field, Schema

Money = Decimal
DateText = str | None
DATE = {"format": "date", "example": "2031-01-31"}
DATETIME = {"format": "date-time", "example": "2031-01-31T10:00:00Z"}
MONEY = {"example": "1250.00", "pattern": r"^\d{1,10}(\.\d{1,2})?$"}


class ProblemOut(Schema):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    errors: dict[str, list[str]] | None = None


# --- people and customers ---------------------------------------------------------


class PersonRef(Schema):
    id: int
    username: str


class CustomerRef(Schema):
    id: int
    name: str
    company: str


class CustomerOut(Schema):
    id: int
    name: str
    company: str
    phone: str
    email: str
    billing_contact: str
    billing_email: str
    chase_by_email: bool
    accounting_cutoff_day: int | None
    standing: str
    plans_notes: str
    technology_notes: str
    created_at: datetime


class CustomerIn(Schema):
    name: str | None = Field(None, max_length=1000)
    company: str | None = Field(None, max_length=1000)
    phone: str | None = Field(None, max_length=1000)
    email: str | None = Field(None, max_length=1000)
    billing_contact: str | None = Field(None, max_length=1000)
    billing_email: str | None = Field(None, max_length=1000)
    chase_by_email: bool | None = None
    accounting_cutoff_day: int | None = None
    plans_notes: str | None = Field(None, max_length=5000)
    technology_notes: str | None = Field(None, max_length=5000)
    add_anyway: bool = Field(
        False, description="Add it even if a customer you see looks the same (409 otherwise)."
    )


class CustomerPage(Schema):
    items: list[CustomerOut]
    next_cursor: str | None


# --- deals ---------------------------------------------------------------------------


class DealOut(Schema):
    id: int
    title: str
    customer: CustomerRef
    rep: PersonRef
    amount: Money
    cleared_amount: Money
    received_amount: Money
    payment_option: str
    deposit_required: bool
    stage: str
    stage_changed_at: datetime
    lost_reason: str
    promised_at: datetime
    expected_delivery_date: date
    next_step: str
    next_step_date: date
    audit_flag: str
    notes: str
    version: int
    url: str = Field(description="The deal's page in the browser.")

    @staticmethod
    def resolve_url(obj) -> str:
        return obj.get_absolute_url()


class DealPage(Schema):
    items: list[DealOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: last.")
    notes: list[str] = Field(description="Filters that were not understood and were ignored.")


class DealIn(Schema):
    customer: int | None = None
    title: str | None = Field(None, max_length=1000)
    amount: str | None = Field(None, max_length=100, json_schema_extra=MONEY)
    payment_option: str | None = Field(None, max_length=100)
    expected_delivery_date: DateText = Field(None, max_length=100, json_schema_extra=DATE)
    next_step: str | None = Field(None, max_length=1000)
    next_step_date: DateText = Field(None, max_length=100, json_schema_extra=DATE)
    notes: str | None = Field(None, max_length=5000)


class DealUpdateIn(Schema):
    """The deal's terms: only the fields sent change. ``version`` is the one read."""

    version: int = Field(description="The deal's version when it was read (409 if it changed).")
    title: str | None = Field(None, max_length=1000)
    amount: str | None = Field(None, max_length=100, json_schema_extra=MONEY)
    payment_option: str | None = Field(None, max_length=100)
    expected_delivery_date: DateText = Field(None, max_length=100, json_schema_extra=DATE)
    next_step: str | None = Field(None, max_length=1000)
    next_step_date: DateText = Field(None, max_length=100, json_schema_extra=DATE)
    notes: str | None = Field(None, max_length=5000)


class MoveIn(Schema):
    to_stage: str = Field(max_length=100)
    version: int
    lost_reason: str | None = Field(None, max_length=100)
    reason: str | None = Field(None, max_length=1000)


class TouchOut(Schema):
    id: int
    kind: str
    happened_at: datetime
    discussed: str
    agreed_to: str
    next_step: str
    next_step_date: date
    author: PersonRef | None


class TouchIn(Schema):
    kind: str | None = Field(None, max_length=100)
    happened_at: str | None = Field(None, max_length=100, json_schema_extra=DATETIME)
    discussed: str | None = Field(None, max_length=5000)
    agreed_to: str | None = Field(None, max_length=5000)
    next_step: str | None = Field(None, max_length=1000)
    next_step_date: DateText = Field(None, max_length=100, json_schema_extra=DATE)


# --- money --------------------------------------------------------------------------


class PaymentOut(Schema):
    id: int
    deal_id: int
    invoice_id: int | None
    kind: str
    method: str
    amount: Money
    reference: str
    status: str
    recorded_at: datetime
    cleared_at: datetime | None


class PaymentPage(Schema):
    items: list[PaymentOut]
    next_cursor: str | None


class PaymentIn(Schema):
    kind: str | None = Field(None, max_length=100)
    method: str | None = Field(None, max_length=100)
    amount: str | None = Field(None, max_length=100, json_schema_extra=MONEY)
    reference: str | None = Field(None, max_length=1000)
    invoice: int | None = None
    instalment: int | None = None


class PaymentStatusIn(Schema):
    to_status: str = Field(max_length=100, description="cleared, bounced or charged_back")
    reason: str | None = Field(None, max_length=1000)


class InvoiceOut(Schema):
    id: int
    number: str
    deal_id: int
    amount: Money
    issue_date: date
    terms_days: int
    due_date: date
    voided: bool
    pdf_url: str

    @staticmethod
    def resolve_number(obj) -> str:
        return obj.display_number

    @staticmethod
    def resolve_voided(obj) -> bool:
        return obj.voided_at is not None

    @staticmethod
    def resolve_pdf_url(obj) -> str:
        return f"/api/v1/invoices/{obj.pk}/pdf"


class InvoicePage(Schema):
    items: list[InvoiceOut]
    next_cursor: str | None


class InvoiceIn(Schema):
    amount: str | None = Field(None, max_length=100, json_schema_extra=MONEY)
    issue_date: DateText = Field(None, max_length=100, json_schema_extra=DATE)
    terms_days: int | None = None


# --- audits and reminders ---------------------------------------------------------------


class AuditOut(Schema):
    id: int
    deal_id: int
    customer: CustomerRef
    state: str
    call_window_start: datetime
    call_window_end: datetime
    next_call_at: datetime | None
    no_answer_count: int
    version: int
    claimed_by_id: int | None
    section: str = ""

    @staticmethod
    def resolve_customer(obj):
        return obj.deal.customer


class AuditOutcomeIn(Schema):
    outcome: str | None = Field(None, max_length=100)
    version: int | None = None
    answers: dict[str, str] = Field(
        default_factory=dict, description="Each script question's key: yes or no."
    )
    callback_at: str | None = Field(None, max_length=100, json_schema_extra=DATETIME)
    recording_ref: str | None = Field(None, max_length=1000)
    notes: str | None = Field(None, max_length=5000)


class AttemptOut(Schema):
    id: int
    audit_id: int
    outcome: str
    audit_state: str


class ReminderOut(Schema):
    id: int
    deal_id: int
    kind: str
    state: str
    due_at: datetime
    snoozed_until: datetime | None


class ReminderPage(Schema):
    items: list[ReminderOut]
    next_cursor: str | None


class SnoozeIn(Schema):
    until: str = Field(
        max_length=100,
        description='"hour", "morning" (tomorrow), or a date-time within a year (ISO 8601).',
    )


# --- the board ------------------------------------------------------------------------


class StageTotal(Schema):
    stage: str
    count: int
    outstanding: Money


class BucketTotal(Schema):
    bucket: str
    count: int
    outstanding: Money


class BoardTotalsOut(Schema):
    count: int
    outstanding: Money
    rotting_count: int
    rotting_outstanding: Money
    by_stage: list[StageTotal]
    by_bucket: list[BucketTotal]


# The problems an endpoint may answer (RFC 9457 documents, api/problems.py).
PROBLEM_CODES = frozenset({400, 401, 403, 404, 409, 422, 429})
ERRORS = {PROBLEM_CODES: ProblemOut}
