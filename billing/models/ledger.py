"""The money ledger: payment methods on file, invoices, payment plans, payments and
their append-only clearing events, and the payment processor's webhook events. Money
cleared on an invoice is defined once here (``paid_against``)."""

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Expression, Max, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone

from billing.policy import cutoff_missed
from pipeline.history import track
from pipeline.ledger import AppendOnlyModel
from pipeline.masking import MaskedCharField, MaskedJSONField, MaskedTextField
from pipeline.models import Customer, Deal
from pipeline.terms import MONEY, ZERO

# --- Terms exceptions -------------------------------------------


# --- Payment methods on file -------------------------------------------


class MethodKind(models.TextChoices):
    CARD = "card", "Card"
    BANK_ACCOUNT = "bank_account", "Bank account"


class PaymentMethod(AppendOnlyModel):
    """A card or bank account secured on file (seed 000, option 2).

    Only what the payment processor gives back is kept: its token, the brand
    or bank, and the last 4 digits — never the full number (PCI DSS).
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payment_methods")
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="payment_methods")
    kind = models.CharField(max_length=20, choices=MethodKind.choices)
    processor_token = MaskedCharField(max_length=120)
    brand = MaskedCharField("brand or bank", max_length=60)
    last4 = models.CharField("last 4 digits", max_length=4)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(last4__regex=r"^[0-9]{4}$"), name="last4_is_4_digits"
            )
        ]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


# --- Invoices -------------------------------------------


class InvoiceSequence(models.Model):
    """The deployment's one invoice counter: numbers are gap-free.

    ``billing.services.invoice_issue`` locks this row (select_for_update) in
    the same transaction as the invoice insert, so a rolled-back invoice
    gives its number back and two clerks never get the same one.
    """

    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Last invoice number: {self.last_number}"


class InvoiceState(models.TextChoices):
    # Issued, no email has left yet (receivables stamps ``Invoice.emailed_at``).
    ISSUED = "issued", "Issued, not sent"
    SENT = "sent", "Sent"
    PARTLY_PAID = "partly_paid", "Partly paid"
    PAID = "paid", "Paid (cleared)"
    VOID = "void", "Void"


class InvoiceQuerySet(models.QuerySet):
    def visible_to(self, user) -> "InvoiceQuerySet":
        """Invoices of the deals the user may see (pipeline.access's rule)."""
        return self.filter(deal__in=Deal.objects.visible_to(user))

    def with_cleared(self, before: datetime | None = None) -> "InvoiceQuerySet":
        """Each invoice with ``cleared``: the money cleared on it (``paid_against``)."""
        return self.annotate(cleared=paid_against("invoice", before=before))

    def with_paid_on(self) -> "InvoiceQuerySet":
        """Each invoice with ``paid_on``: the day its last cleared payment cleared."""
        last = (
            Payment.objects.filter(invoice=OuterRef("pk"), status=PaymentStatus.CLEARED)
            .order_by()
            .values("invoice")
            .annotate(last=Max(TruncDate("cleared_at")))
            .values("last")
        )
        return self.annotate(paid_on=Subquery(last))


def invoice_display_number(number: int) -> str:
    """An invoice's number as every page, email and reminder names it: "INV-00009".

    One name for one thing: the reminders' why texts use it too (not "Invoice #9").
    """
    return f"{settings.CLEARED_INVOICE_PREFIX}{number:05d}"


class Invoice(models.Model):
    """A bill for (part of) a deal, on terms of net N days.

    Only ``voided_*`` ever change after issue. Whether it is paid is derived
    from cleared payments (``state_for``), never stored.
    """

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="invoices")
    number = models.PositiveIntegerField(unique=True, editable=False)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    issue_date = models.DateField()
    terms_days = models.PositiveSmallIntegerField("net days")
    due_date = models.DateField()
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    issued_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    void_reason = MaskedCharField(max_length=300, blank=True)
    # When its first email left (receivables.mail stamps it): "Sent" only from then.
    emailed_at = models.DateTimeField(null=True, blank=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-number"]
        indexes = [
            # The payment due reminders (reminders/rules/billing.py): open invoices by due date.
            models.Index(
                fields=["due_date"], condition=Q(voided_at__isnull=True), name="open_invoice_due"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_amount_positive"),
            models.CheckConstraint(
                condition=Q(due_date__gte=models.F("issue_date")), name="invoice_due_after_issue"
            ),
        ]

    def __str__(self) -> str:
        return self.display_number

    def get_absolute_url(self) -> str:
        return reverse("billing:invoice_detail", args=[self.pk])

    @property
    def display_number(self) -> str:
        return invoice_display_number(self.number)

    @staticmethod
    def history_label(row) -> str:
        """How the change record names a row of this invoice's history (pipeline/changes.py)."""
        return f"Invoice {invoice_display_number(row.number)}"

    @property
    def is_void(self) -> bool:
        return self.voided_at is not None

    def cleared_money(self) -> Decimal:
        """The money cleared on this invoice (one query; ``paid_against``)."""
        return Invoice.objects.with_cleared().values_list("cleared", flat=True).get(pk=self.pk)

    def state_for(self, cleared: Decimal | None) -> InvoiceState:
        """Issued or sent, partly paid or paid, from the cleared money against it; or void."""
        if self.is_void:
            return InvoiceState.VOID
        cleared = cleared or ZERO
        if cleared >= self.amount:
            return InvoiceState.PAID
        if cleared > 0:
            return InvoiceState.PARTLY_PAID
        return InvoiceState.SENT if self.emailed_at is not None else InvoiceState.ISSUED

    @property
    def cutoff_day(self) -> int | None:
        return self.deal.customer.accounting_cutoff_day

    @property
    def misses_cutoff(self) -> bool:
        """Issued after this month's accounting cut-off: it waits for next month's run."""
        return cutoff_missed(self.issue_date, self.cutoff_day)

    def is_owed(self, cleared: Decimal | None) -> bool:
        """Still owed: issued (emailed or not), sent or partly paid; not paid, not void."""
        return self.state_for(cleared) in (
            InvoiceState.ISSUED,
            InvoiceState.SENT,
            InvoiceState.PARTLY_PAID,
        )

    def is_overdue(self, today: date, cleared: Decimal | None) -> bool:
        return self.due_date < today and self.is_owed(cleared)


def invoice_due_date(issue_date: date, terms_days: int) -> date:
    return issue_date + timedelta(days=terms_days)


# --- Payment plans -------------------------------------------


class PaymentPlan(models.Model):
    """A balance split into dated instalments (seed 001, tip 3: a cash crunch)."""

    deal = models.OneToOneField(Deal, on_delete=models.PROTECT, related_name="payment_plan")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    note = MaskedCharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"Payment plan for deal #{self.deal_id}"


class Instalment(models.Model):
    """One dated part of a payment plan, due and chased on its own (reminders)."""

    plan = models.ForeignKey(PaymentPlan, on_delete=models.CASCADE, related_name="instalments")
    sequence = models.PositiveSmallIntegerField()
    due_date = models.DateField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["plan", "sequence"]
        indexes = [models.Index(fields=["due_date"])]
        constraints = [
            models.UniqueConstraint(fields=["plan", "sequence"], name="one_instalment_per_place"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="instalment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Instalment {self.sequence} of deal #{self.plan.deal_id}, due {self.due_date}"


# --- Payments and their clearing ledger -------------------------------------------


class PaymentKind(models.TextChoices):
    DEPOSIT = "deposit", "Deposit"
    INSTALMENT = "instalment", "Instalment"
    FINAL = "final", "Final payment"


class PaymentMethodKind(models.TextChoices):
    CARD = "card", "Card"
    BANK_TRANSFER = "bank_transfer", "Bank transfer"
    CHECK = "check", "Check"
    CASH = "cash", "Cash"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CLEARED = "cleared", "Cleared"
    BOUNCED = "bounced", "Bounced"
    CHARGED_BACK = "charged_back", "Charged back"


# The clearing lifecycle: which status a payment may move to from which.
# A check that cleared can still bounce days later; a card that settled can be
# charged back. Bounced and charged back are final.
STATUS_MOVES: dict[str, frozenset[str]] = {
    PaymentStatus.CLEARED: frozenset({PaymentStatus.PENDING}),
    PaymentStatus.BOUNCED: frozenset({PaymentStatus.PENDING, PaymentStatus.CLEARED}),
    PaymentStatus.CHARGED_BACK: frozenset({PaymentStatus.CLEARED}),
}
# Money that is in or on its way: what an overpayment is checked against.
LIVE_STATUSES = (PaymentStatus.PENDING, PaymentStatus.CLEARED)


class PaymentQuerySet(models.QuerySet):
    _STATUS_COLUMNS = frozenset({"status", "status_changed_at", "cleared_at"})

    def update(self, **kwargs):
        # Only the clearing compare-and-set in billing.services writes here.
        if not set(kwargs) <= self._STATUS_COLUMNS:
            raise TypeError("Payments are append-only: only their status moves, with an event.")
        return super().update(**kwargs)

    def delete(self):
        raise TypeError("Payments are never deleted.")

    def visible_to(self, user) -> "PaymentQuerySet":
        """Payments on the deals the user may see (pipeline.access's rule)."""
        return self.filter(deal__in=Deal.objects.visible_to(user))


class Payment(models.Model):
    """Money received against a deal (and an invoice or instalment when there is one).

    Recorded pending; cleared, bounced or charged back only through
    ``billing.services.payment_clear`` and its siblings, which writes a ``PaymentEvent``.
    """

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    instalment = models.ForeignKey(
        Instalment, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    kind = models.CharField(max_length=12, choices=PaymentKind.choices)
    method = models.CharField(max_length=16, choices=PaymentMethodKind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reference = MaskedCharField(
        max_length=120, blank=True, help_text="Check number, transfer reference, receipt…"
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    status_changed_at = models.DateTimeField(default=timezone.now)
    # When the payment last cleared (kept after a later bounce, for history).
    cleared_at = models.DateTimeField(null=True, blank=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            models.Index(fields=["deal", "status"]),
            # The managers' clearing queue: pending payments, oldest first; and a
            # month's pending money (billing.reports), index-only with its deal and amount.
            models.Index(
                fields=["recorded_at"],
                condition=Q(status="pending"),
                include=["deal", "amount"],
                name="pending_payment_queue",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} on deal #{self.deal_id} ({self.status})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Payments are append-only: only their status moves, with an event.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Payments are never deleted.")

    @staticmethod
    def history_label(row) -> str:
        """How the change record names a row of this payment's history (pipeline/changes.py)."""
        return f"Payment #{row.id} ({row.amount}) on deal #{row.deal_id}"


class RefundStatus(models.TextChoices):
    # Sent to the payment processor, its answer not in yet: counted as given back.
    PROCESSING = "processing", "Refund processing"
    REFUNDED = "refunded", "Refunded"
    # The processor refused it: the money never left, it counts again.
    FAILED = "failed", "Refund failed"


# Refunds that take money off a payment: given back, or on its way back.
LIVE_REFUNDS = (RefundStatus.PROCESSING, RefundStatus.REFUNDED)


class RefundQuerySet(models.QuerySet):
    _STATUS_COLUMNS = frozenset({"status", "settled_at", "processor_ref", "failure"})

    def update(self, **kwargs):
        # Only the processor's answer moves a refund (billing.services.refunds).
        if not set(kwargs) <= self._STATUS_COLUMNS:
            raise TypeError("Refunds are append-only: only the processor's answer moves them.")
        return super().update(**kwargs)

    def delete(self):
        raise TypeError("Refunds are never deleted.")

    def live(self) -> "RefundQuerySet":
        """Refunds that count: on a payment still cleared, given back or on their way."""
        return self.filter(status__in=LIVE_REFUNDS, payment__status=PaymentStatus.CLEARED)


class Refund(models.Model):
    """Money of a cleared payment given back to the customer, in full or in part, with why.

    A row of its own: the payment's amount never changes. The money it gives
    back comes off the payment's cleared money (``paid_against``, the deal's
    copies) while it is live (``LIVE_REFUNDS``); a refund through the payment
    processor is written *before* the processor is asked (its id is the
    idempotency key), so a crash in between leaves a row the reconciliation
    or the processor's ``charge.refunded`` event settles.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    # The payment's deal, copied so a deal's refunds are summed without a join.
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = MaskedTextField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=12, choices=RefundStatus.choices, default=RefundStatus.REFUNDED
    )
    # When the processor answered (or the row was written, for money given back by hand).
    settled_at = models.DateTimeField(null=True, blank=True)
    # The processor's own id of the refund (re_…), masked like every processor token.
    processor_ref = MaskedCharField(max_length=120, blank=True)
    failure = MaskedCharField(max_length=300, blank=True)

    objects = RefundQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["payment", "status"]),
            models.Index(fields=["deal", "status"]),
            # The reconciliation scan: refunds the processor has not answered yet.
            models.Index(
                fields=["at"], condition=Q(status="processing"), name="refund_processing_queue"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} of payment {self.payment_id} ({self.status})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Refunds are append-only: only the processor's answer moves them.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Refunds are never deleted.")


def refunded_on(payments) -> Decimal:
    """The money given back (live refunds) on ``payments`` — a Payment queryset — summed in SQL."""
    total = Refund.objects.live().filter(payment__in=payments.order_by().values("pk"))
    return total.aggregate(total=Coalesce(Sum("amount"), ZERO))["total"]


def paid_against(
    link: str,
    *,
    status: str = PaymentStatus.CLEARED,
    before: datetime | OuterRef | None = None,
    moment: str = "cleared_at",
    of: str = "pk",
) -> Expression:
    """Money cleared on an invoice (``link="invoice"``) or an instalment: the sum of
    its payments in ``status`` (cleared unless told), 0.00 when none, as a
    subquery on the invoice's (instalment's) row. ``before``: only payments whose
    ``moment`` came earlier (a statement as of a day). Cleared money given back
    (``Refund``, live) is taken off: a refunded invoice is owed again (and, with
    ``before``, a refund counts from when it was given).

    ``of`` names the outer row's field that holds the invoice: its ``pk``, or
    ``invoice_id`` on a row that points at one, whose own moment ``before`` may
    then be (``OuterRef("sent_at")``: what was paid when a chase email went).

    The one definition of "money cleared on an invoice": ``Invoice.cleared_money``,
    ``InvoiceQuerySet.with_cleared``, the statements, DSO, the reminders and the
    chase's effect (receivables.selectors.chase_effect) read it.
    """
    payments = Payment.objects.filter(**{link: OuterRef(of)}, status=status)
    if before is not None:
        payments = payments.filter(**{f"{moment}__lt": before})
    total = payments.order_by().values(link).annotate(total=Sum("amount")).values("total")
    paid = Coalesce(Subquery(total), Value(ZERO), output_field=MONEY)
    if status != PaymentStatus.CLEARED:
        return paid
    # Money given back no longer counts as paid (a refund, in full or in part).
    refunds = Refund.objects.live().filter(**{f"payment__{link}": OuterRef(of)})
    if before is not None:
        refunds = refunds.filter(at__lt=before, **{f"payment__{moment}__lt": before})
    given_back = (
        refunds.order_by().values(f"payment__{link}").annotate(total=Sum("amount")).values("total")
    )
    return paid - Coalesce(Subquery(given_back), Value(ZERO), output_field=MONEY)


class EventSource(models.TextChoices):
    STAFF = "staff", "Staff"
    WEBHOOK = "webhook", "Payment processor"


class PaymentEvent(AppendOnlyModel):
    """One change in a payment's clearing: from, to, why, who (or the processor), when.

    Bounces are rows with ``to_status="bounced"``: the reminders work reads
    them (the payment bounced rule, reminders/rules/billing.py) to notify rep and manager.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="events")
    from_status = models.CharField(max_length=16, choices=PaymentStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=PaymentStatus.choices)
    reason = MaskedTextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty when the payment processor reported it.",
    )
    source = models.CharField(max_length=10, choices=EventSource.choices, default=EventSource.STAFF)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["payment", "-at"]),
            # Reminders and standing: recent bounces and charge-backs.
            models.Index(fields=["to_status", "-at"]),
        ]

    def __str__(self) -> str:
        return f"Payment {self.payment_id}: {self.from_status or '—'} → {self.to_status}"


class WebhookEvent(AppendOnlyModel):
    """A payment processor event applied once: the event id is unique."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=40)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="webhook_events"
    )
    # The event as received, every string in it masked: a "reason" may quote a card.
    payload = MaskedJSONField()
    outcome = MaskedCharField(max_length=200)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.type})"


# Every change on the record (pipeline/history.py): payments' status moves, invoices' voids.
track(Payment)
track(Invoice)
