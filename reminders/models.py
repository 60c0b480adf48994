"""The Reminder row and the per-recipient digest record."""

import re

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from pipeline.masking import MaskedCharField


class ReminderKind(models.TextChoices):
    """DOMAIN.md's table of reminder kinds, in its order."""

    AUDIT_DUE = "audit_due", "Audit due"
    AUDIT_OVERDUE = "audit_overdue", "Audit overdue"
    AUDIT_RETRY = "audit_retry", "Audit retry"
    AUDIT_FLAKED = "audit_flaked", "Flaked at audit"
    AUDIT_DISPUTED = "audit_disputed", "Disputed at audit"
    CHECK_IN = "check_in", "Post-sale check-in"
    DEPOSIT_MISSING = "deposit_missing", "Deposit missing"
    DELIVERY_OVERDUE = "delivery_overdue", "Delivery overdue"
    SATISFACTION_CHECK = "satisfaction_check", "Satisfaction check"
    INVOICE_CUTOFF = "invoice_cutoff", "Invoice cut-off"
    PAYMENT_DUE = "payment_due", "Payment due"
    PAYMENT_OVERDUE = "payment_overdue", "Payment overdue"
    PAYMENT_BOUNCED = "payment_bounced", "Payment bounced"
    NEXT_STEP_DUE = "next_step_due", "Next step due"
    STALE_DEAL = "stale_deal", "Stale deal"
    # "Ask my manager" (billing.ExceptionRequest): rules in reminders/rules/billing.py.
    EXCEPTION_ASKED = "exception_asked", "Exception asked"
    EXCEPTION_DECIDED = "exception_decided", "Exception decided"
    # A change of terms frozen by the audit, asked of the manager
    # (pipeline.TermsChange): rules in reminders/rules/terms.py.
    TERMS_CHANGE_ASKED = "terms_change_asked", "Terms change asked"
    TERMS_CHANGE_DECIDED = "terms_change_decided", "Terms change decided"
    # A customer email refused for good, or failed (receivables.CustomerEmail):
    # reminders/rules/receivables.py.
    EMAIL_BOUNCED = "email_bounced", "Customer email bounced"
    # The customer's answers through their link (reminders/rules/receivables.py).
    CUSTOMER_SAYS_PAID = "customer_says_paid", "Customer says paid"
    PROMISE_PASSED = "promise_passed", "Payment promise passed"
    # Told at once (reminders/rules/receivables.py): the customer said "I'll pay on …".
    CUSTOMER_PROMISED = "customer_promised", "Customer promised to pay"
    # A payment still pending after CLEARED_PENDING_DAYS (reminders/rules/pending.py).
    PAYMENT_PENDING = "payment_pending", "Payment still pending"


# A payment reminder's occurrence on an invoice: "i12", "i12+7", "i12+30/manager".
_INVOICE_RUNG = re.compile(r"^i(\d+)(?:\+(\d+))?(?:/manager)?$")
# A promise the customer made on an invoice: "i12@2026-11-30".
_INVOICE_PROMISE = re.compile(r"^i(\d+)@")


class ReminderState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    DUE = "due", "Due"
    SNOOZED = "snoozed", "Snoozed"
    DONE = "done", "Done"
    RESOLVED = "resolved", "Resolved"
    CANCELLED = "cancelled", "Cancelled"


# Still asking for someone's attention; the others are history.
OPEN_STATES = (ReminderState.SCHEDULED, ReminderState.DUE, ReminderState.SNOOZED)
CLOSED_STATES = (ReminderState.DONE, ReminderState.RESOLVED, ReminderState.CANCELLED)


class ReminderQueue(models.TextChoices):
    """Role queues: a reminder that belongs to everyone in a role, not one person."""

    NONE = "", "—"
    AUDIT = "audit", "Audit queue"


class Reminder(models.Model):
    """One nag about one deal: exists once per (deal, kind, occurrence), never twice.

    ``occurrence`` tells repeats of a kind apart: ``once`` for a one-off (the
    post-sale check-in), a date for a dated fact (the next step's date), a
    payment's id for a bounce, the rung of the overdue ladder.
    """

    deal = models.ForeignKey("pipeline.Deal", on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=24, choices=ReminderKind.choices)
    occurrence = models.CharField(max_length=64, default="once")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="reminders",
        help_text="Empty for a role-queue reminder.",
        # reminder_by_owner (owner, due_at) leads with it: a second index of the
        # owner alone only cost every insert and state change (13 indexes a row).
        db_index=False,
    )
    queue = models.CharField(max_length=16, choices=ReminderQueue.choices, blank=True, default="")
    why = MaskedCharField(max_length=300)
    due_at = models.DateTimeField()
    state = models.CharField(
        max_length=12, choices=ReminderState.choices, default=ReminderState.SCHEDULED
    )
    snoozed_until = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When its owner's email digest included it."
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who marked it done, snoozed or cancelled it; empty when Cleared resolved it.",
        db_index=False,  # reminder_resolved_by: only the rows that name someone
    )
    resolution = MaskedCharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "pipeline_reminder"
        ordering = ["-due_at", "-id"]
        constraints = [
            # "Never twice" is a fact of the database, not a hope of the code:
            # the scan's bulk insert skips rows that break it (ignore_conflicts).
            models.UniqueConstraint(
                fields=["deal", "kind", "occurrence"], name="reminder_once_per_occurrence"
            ),
            models.CheckConstraint(
                condition=Q(owner__isnull=False) | ~Q(queue=""), name="reminder_has_owner_or_queue"
            ),
        ]
        indexes = [
            # A person deleted: the reminders they resolved (most name nobody:
            # Cleared resolved them, and the engine's inserts skip this index).
            models.Index(
                fields=["resolved_by"],
                name="reminder_resolved_by",
                condition=Q(resolved_by__isnull=False),
            ),
            # Scan, step (b): scheduled reminders whose time has come.
            models.Index(
                fields=["due_at"],
                name="reminder_scheduled_due",
                condition=Q(state="scheduled"),
            ),
            # Scan, step (b): snoozed reminders whose snooze is over.
            models.Index(
                fields=["snoozed_until"],
                name="reminder_snoozed_wake",
                condition=Q(state="snoozed"),
            ),
            # Scan, step (c): the open reminders of a kind, to resolve those whose cause is gone.
            models.Index(
                fields=["kind", "deal"],
                name="reminder_open_by_kind",
                condition=Q(state__in=["scheduled", "due", "snoozed"]),
            ),
            # The Not paid yet board's next reminder of each deal (dashboards.board:
            # the earliest open one by the time it asks for attention), and its CSV
            # export, which asks it of every unpaid deal: one index entry read a
            # deal, no table row and no sort (at a million deals, 599,128 probes:
            # 5 -> 2 us each).
            models.Index(
                F("deal"),
                Coalesce("snoozed_until", "due_at"),
                F("id"),
                name="reminder_open_next_by_deal",
                include=["snoozed_until", "due_at"],
                condition=Q(state__in=["scheduled", "due", "snoozed"]),
            ),
            # Home panel, its poll (selectors.panel_version), nav badge and /reminders/
            # (open): one person's open reminders. Covering what the poll and the
            # badge read, so they are index-only: every open home polls every 15 s,
            # and a rep with thousands of open reminders read each row from the
            # table (the poll's 24-63 ms at 1,000,000 deals).
            models.Index(
                fields=["owner", "due_at"],
                name="reminder_open_by_owner",
                condition=Q(state__in=["scheduled", "due", "snoozed"]),
                include=["id", "state", "snoozed_until", "updated_at"],
            ),
            # Home panel for auditors: the shared queue's open reminders.
            models.Index(
                fields=["queue", "due_at"],
                name="reminder_open_by_queue",
                condition=Q(state__in=["scheduled", "due", "snoozed"]) & ~Q(queue=""),
                include=["id", "owner", "state", "snoozed_until", "updated_at"],
            ),
            # Email digest job: due reminders not yet in anyone's digest.
            models.Index(
                fields=["owner", "queue"],
                name="reminder_to_notify",
                condition=Q(state="due", notified_at__isnull=True),
            ),
            # /reminders/ history (done, resolved…): one person's, newest first.
            models.Index(fields=["owner", "-due_at"], name="reminder_by_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on deal #{self.deal_id} ({self.occurrence})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def asks_for_decision(self) -> bool:
        """A dispute reminder of the manager's: acting on it is deciding."""
        return self.kind == ReminderKind.AUDIT_DISPUTED and self.occurrence.endswith("/manager")

    @property
    def target_url(self) -> str:
        """Where acting on it happens: the audit queue for auditors, the manager's
        decision page for a dispute, else the deal."""
        if self.queue == ReminderQueue.AUDIT:
            return reverse("audits:queue")
        if self.asks_for_decision:
            return reverse("audits:dispute", args=[self.deal_id])
        return self.deal.get_absolute_url()

    @property
    def chase_url(self) -> str:
        """A payment reminder on an invoice: the page that previews and sends its email ("").

        A passed promise ("chase again") opens the chase the invoice has reached
        today, which says how late it is (``billing:chase_now``)."""
        if self.kind == ReminderKind.PROMISE_PASSED:
            match = _INVOICE_PROMISE.match(self.occurrence)
            return reverse("billing:chase_now", args=[int(match[1])]) if match else ""
        if self.kind not in (ReminderKind.PAYMENT_DUE, ReminderKind.PAYMENT_OVERDUE):
            return ""
        match = _INVOICE_RUNG.match(self.occurrence)
        if match is None:
            return ""
        return reverse("billing:chase", args=[int(match[1]), int(match[2] or 0)])

    @property
    def target_label(self) -> str:
        if self.queue == ReminderQueue.AUDIT:
            return "Open the audit queue"
        return "Decide" if self.asks_for_decision else "Open the deal"

    @property
    def shown_at(self):
        """When it asks for attention: the end of its snooze, or its due time."""
        return self.snoozed_until or self.due_at

    def is_due(self, now=None) -> bool:
        now = now or timezone.now()
        return self.is_open and self.shown_at <= now


class ReminderDigest(models.Model):
    """When a recipient (a person or a role queue) was last emailed a digest.

    Claimed with a compare-and-set on ``claimed_until`` (a short lease) and
    ``last_sent_at`` so two workers never both send one recipient's digest;
    ``failures`` and ``retry_at`` back off a mail server that refuses, instead
    of retrying it every minute.
    """

    recipient = models.CharField(max_length=40, unique=True, help_text="user:<id> or queue:<name>")
    last_sent_at = models.DateTimeField(null=True, blank=True)
    # Held by the worker sending this digest now; a worker killed mid-send lets
    # go of it when the lease runs out (REMINDERS_DIGEST_LEASE_SECONDS), not after a
    # whole digest interval.
    claimed_until = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    last_error = MaskedCharField(max_length=300, blank=True)

    class Meta:
        db_table = "pipeline_reminderdigest"

    def __str__(self) -> str:
        return f"Digest for {self.recipient}"


class Job(models.Model):
    """Single-flight for the reminders' background jobs: one row per job.

    ``running_until``: a worker runs it now, under a lease it renews as it goes;
    a second worker handed the same job returns at once, and a worker killed
    mid-run lets go when its lease runs out. ``queued_until``: a message for it
    is in the broker, so another event does not queue a second one (the queue
    holds at most one per job, however many events arrive).
    """

    name = models.CharField(max_length=20, primary_key=True)
    running_until = models.DateTimeField(null=True, blank=True)
    queued_until = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "reminders_job"

    def __str__(self) -> str:
        return self.name


class DealSchedule(models.Model):
    """When the reminders engine must look at a deal again by time alone.

    ``next_at`` is the earliest moment at which any rule could change its
    decision about the deal (a reminder comes within the horizon, an audit
    window closes, a promised day passes), written by the engine each time it
    decides the deal (``reminders.schedule``); empty when only a change to the
    deal can. The minute's scan reads the rows whose moment came through a
    partial index, so its cost follows the deals that are due, not the deals
    stored. A row of the reminders' own: the pipeline never knows it exists.
    """

    deal = models.OneToOneField(
        "pipeline.Deal", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    next_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_at"], name="deal_schedule_next", condition=Q(next_at__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return f"Deal #{self.deal_id}: next look at {self.next_at or 'its next change'}"
