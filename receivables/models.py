"""Asking the customer for money: the emails sent to them (invoices, the polite
chase, statements), each manager's chase wording, the customer's own link and
what they answered through it.

The tables keep the names they had in billing (``db_table``): the models moved
to this app in ``receivables/migrations/0001_initial.py`` without touching a row.
"""

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models import Invoice
from pipeline.ledger import AppendOnlyModel
from pipeline.masking import MaskedCharField, MaskedEmailField, MaskedTextField
from pipeline.models import Customer, Deal

# --- Emails to the customer: invoices and the polite chase -------------------------


class ChaseTemplate(models.Model):
    """A manager's wording for one rung of the overdue ladder, for their team's deals.

    ``rung`` is days after the due date (0: due today; then
    ``REMINDERS_PAYMENT_LADDER_DAYS``). Without a row a rung uses
    ``receivables.chase.DEFAULT_TEMPLATES``. ``auto_send``: the rung goes by
    itself when it falls due (never the last rung: the manager approves it).
    """

    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chase_templates"
    )
    rung = models.PositiveSmallIntegerField()
    subject = MaskedCharField(max_length=200)
    body = MaskedTextField()
    auto_send = models.BooleanField(default=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "billing_chasetemplate"
        ordering = ["manager", "rung"]
        constraints = [
            models.UniqueConstraint(fields=["manager", "rung"], name="one_chase_template_per_rung")
        ]

    def __str__(self) -> str:
        return f"Chase +{self.rung} days for {self.manager}'s team"


class EmailKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CHASE = "chase", "Payment reminder"
    STATEMENT = "statement", "Statement"


class EmailState(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting the manager's approval"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    BOUNCED = "bounced", "Bounced"
    CANCELLED = "cancelled", "Not sent"


class CustomerEmail(models.Model):
    """One email to a customer, recorded exactly once, sent at least once.

    A row per (invoice, kind, rung) — per (customer, day) for a statement —
    held by unique constraints, so a second click, a retried task or two
    beats find the row instead of making another. The worker claims a row by
    compare-and-set (``queued`` → ``sending`` with a lease in
    ``claimed_until``); a worker killed mid-send leaves the lease to run out
    and the next run sends it, with the same ``message_id``. A refusing mail
    server puts it back in the queue with a back-off (``next_attempt_at``).
    """

    kind = models.CharField(max_length=12, choices=EmailKind.choices)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="emails")
    deal = models.ForeignKey(Deal, null=True, on_delete=models.PROTECT, related_name="emails")
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="emails"
    )
    rung = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Days past due of a payment reminder."
    )
    statement_date = models.DateField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=EmailState.choices, default=EmailState.QUEUED)
    to_address = MaskedEmailField(blank=True)
    subject = MaskedCharField(max_length=300, blank=True)
    # In whose name it goes (From's display name, Reply-To): the rep who asked, else the deal's rep.
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=200, unique=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When it reached its last state (sent, bounced, failed, not sent).
    settled_at = models.DateTimeField(null=True, blank=True)
    # The mail server's last refusal, or why it was not sent.
    outcome = MaskedCharField(max_length=300, blank=True)

    class Meta:
        db_table = "billing_customeremail"
        ordering = ["-created_at", "-id"]
        constraints = [
            # One per (invoice, kind, rung): the invoice itself once, each chase rung once.
            models.UniqueConstraint(
                fields=["invoice"], condition=Q(kind="invoice"), name="one_invoice_email"
            ),
            models.UniqueConstraint(
                fields=["invoice", "rung"], condition=Q(kind="chase"), name="one_chase_per_rung"
            ),
            models.UniqueConstraint(
                fields=["customer", "statement_date"],
                condition=Q(kind="statement"),
                name="one_statement_email_per_customer_day",
            ),
            models.CheckConstraint(
                condition=Q(kind="statement") | Q(invoice__isnull=False),
                name="invoice_email_names_an_invoice",
            ),
        ]
        indexes = [
            # The sender's run: queued emails whose time has come.
            models.Index(
                fields=["next_attempt_at"], condition=Q(state="queued"), name="email_queued_due"
            ),
            # The sender's run: claims whose worker died (lease over).
            models.Index(
                fields=["claimed_until"], condition=Q(state="sending"), name="email_lease_over"
            ),
            # The email bounced reminder (reminders/rules/receivables.py): recent bounces.
            models.Index(
                fields=["settled_at"], condition=Q(state="bounced"), name="email_bounced_recent"
            ),
            # The Chasing page: a team's recent emails; the chase-effect figure.
            models.Index(fields=["kind", "-created_at"], name="email_kind_recent"),
        ]

    def __str__(self) -> str:
        rung = f" +{self.rung}" if self.rung is not None else ""
        return f"{self.get_kind_display()}{rung} to {self.to_address or '—'} ({self.state})"

    @property
    def rung_label(self) -> str:
        if self.rung is None:
            return ""
        return "Due today" if self.rung == 0 else f"+{self.rung} days"

    @property
    def never_reached(self) -> bool:
        """It ended without reaching the customer (bounced, failed, not sent): it may
        be asked for again (``receivables.mail``), e.g. once the address is corrected."""
        return self.state in NEVER_REACHED


NEVER_REACHED = (EmailState.BOUNCED, EmailState.FAILED, EmailState.CANCELLED)


# --- The customer's own link -------------------------------------------


class CustomerLink(models.Model):
    """A link the customer opens without logging in: one invoice, or their statement.

    The URL carries ``key`` signed with the deployment's secret
    (``receivables.links``); the row decides whether it still works: a revoked
    or expired link answers 404, like a forged one. ``key`` is random, so a
    link's URL says nothing about how many others exist.
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="links")
    invoice = models.ForeignKey(
        Invoice,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="links",
        help_text="Empty: the link shows the customer's statement.",
    )
    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "billing_customerlink"
        ordering = ["-created_at", "-id"]
        indexes = [
            # The links panel on a customer's page (and a deal's, by invoice).
            models.Index(fields=["customer", "-created_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")), name="link_expires_after_made"
            ),
        ]

    def __str__(self) -> str:
        return f"Link to {self.subject} for {self.customer}"

    @property
    def subject(self) -> str:
        return f"invoice {self.invoice.display_number}" if self.invoice_id else "statement"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now())

    def is_live(self, now: datetime | None = None) -> bool:
        """Opens for the customer: neither revoked nor past its expiry."""
        return not self.is_revoked and not self.is_expired(now)


class ResponseKind(models.TextChoices):
    PAID = "paid", "Says they have paid"
    PROMISE = "promise", "Promises to pay"


class CustomerResponse(AppendOnlyModel):
    """What the customer said through their link, about one invoice: "I've paid"
    (with their reference) or "I'll pay on …" (a date).

    Neither is money: a claim of payment is checked against the ledger and a
    promise is chased again when its date passes without cleared money
    (reminders/rules/receivables.py reads these rows). A statement answered as a
    whole gives one row per open invoice on it.
    """

    link = models.ForeignKey(CustomerLink, on_delete=models.PROTECT, related_name="responses")
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="customer_responses"
    )
    kind = models.CharField(max_length=10, choices=ResponseKind.choices)
    # Typed by the customer: masked like every free text (a card number is never stored).
    reference = MaskedCharField(max_length=120, blank=True)
    promised_for = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "billing_customerresponse"
        ordering = ["-created_at", "-id"]
        indexes = [
            # The deal's and customer's responses panel, newest first.
            models.Index(fields=["invoice", "-created_at"]),
            # Reminder rule "customer says paid": claims made lately.
            models.Index(
                fields=["created_at"], condition=Q(kind="paid"), name="response_paid_recent"
            ),
            # Reminder rule "payment promise passed": promises by their date.
            models.Index(
                fields=["promised_for"], condition=Q(kind="promise"), name="response_promise_day"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="paid") & Q(promised_for__isnull=True))
                | (Q(kind="promise") & Q(promised_for__isnull=False)),
                name="response_promise_has_a_date",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == ResponseKind.PROMISE:
            return f"Promise to pay {self.invoice} on {self.promised_for}"
        return f"Says {self.invoice} is paid"
