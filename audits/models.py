"""The audit: a billed sale is closed twice (DOMAIN.md, "The audit: closed twice").

The rep wraps the sale up with the customer (``WrapUpChecklist``); that queues
an ``Audit``; an auditor phones the customer, reading a versioned
``CallScript``, and records each ``CallAttempt``. Attempts are verification
records, kept about two years (verbal-sale rules): nothing here is ever
deleted, and attempts are never edited.

The deadlines the reminders read are columns: the call window, ``retry_at``,
``callback_at``, ``claim_expires_at`` and ``next_call_at`` (which of those is
due next, for ordering the queue).
"""

from datetime import datetime
from string import Template

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from pipeline.ledger import AppendOnlyModel, AppendOnlyQuerySet
from pipeline.masking import MaskedCharField, MaskedJSONField, MaskedTextField
from pipeline.models import Deal
from pipeline.terms import money_text

# The third no-answer flakes the deal (DOMAIN.md): back to the rep to re-close.
FLAKE_AFTER_NO_ANSWERS = 3


class _AppendOnlyQuerySet(models.QuerySet):
    def delete(self):
        raise TypeError("Verification records are kept: they are never deleted.")


class WrapUpChecklist(models.Model):
    """The rep's wrap-up with the customer before handing a billed sale to audit.

    Every item is required (six in DOMAIN.md; the sixth is ticked twice:
    reconfirmed, and reconfirmed a third time). A row only exists complete:
    ``audits.services.wrap_up_hand_over`` refuses anything less, and the
    check constraints below refuse it in the database too.
    """

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="wrap_ups")
    # 1. call time confirmed: a window, e.g. within the next hour
    call_window_start = models.DateTimeField("call window from")
    call_window_end = models.DateTimeField("call window until")
    # 2. phone number confirmed
    confirmed_phone = MaskedCharField("confirmed phone number", max_length=40)
    # 3. the customer will be available to answer
    customer_will_answer = models.BooleanField(
        "the customer confirmed they will be available to answer", default=False
    )
    # 4. the rep gave their own name and direct number
    rep_gave_contact = models.BooleanField(
        "I gave the customer my name and direct number", default=False
    )
    # 5. asked about concerns; what the customer said, "none" included
    concerns = MaskedTextField("the customer's concerns")
    # 6. call time reconfirmed, and reconfirmed a third time
    call_time_reconfirmed = models.BooleanField("call time reconfirmed", default=False)
    reconfirmed_third_time = models.BooleanField(
        "call time reconfirmed a third time", default=False
    )

    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    completed_at = models.DateTimeField(default=timezone.now)

    objects = _AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-completed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(call_window_end__gt=models.F("call_window_start")),
                name="wrap_up_window_ends_after_it_starts",
            ),
            models.CheckConstraint(
                condition=Q(
                    customer_will_answer=True,
                    rep_gave_contact=True,
                    call_time_reconfirmed=True,
                    reconfirmed_third_time=True,
                )
                & ~Q(confirmed_phone="")
                & ~Q(concerns=""),
                name="wrap_up_every_item_done",
            ),
        ]

    def __str__(self) -> str:
        return f"Wrap-up of deal #{self.deal_id}"

    def delete(self, *args, **kwargs):
        raise TypeError("Verification records are kept: they are never deleted.")


class AuditState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RETRY = "retry", "Retry after no answer"
    CALL_BACK = "call_back", "Call back"
    CONFIRMED = "confirmed", "Confirmed"
    DISPUTED = "disputed", "Disputed"
    DECLINED = "declined", "Declined"
    FLAKED = "flaked", "Flaked"


OPEN_STATES = (AuditState.QUEUED, AuditState.RETRY, AuditState.CALL_BACK)
CLOSED_STATES = (
    AuditState.CONFIRMED,
    AuditState.DISPUTED,
    AuditState.DECLINED,
    AuditState.FLAKED,
)


class DisputeDecision(models.TextChoices):
    """The manager's decision on a disputed audit (DOMAIN.md, "The audit")."""

    NONE = "", "Awaiting the manager"
    LOST = "lost", "Marked lost: disputed at audit"
    RE_CLOSE = "re_close", "Sent back to the rep to re-close"


class AuditQuerySet(_AppendOnlyQuerySet):
    def open(self) -> "AuditQuerySet":
        return self.filter(state__in=OPEN_STATES)

    def closed(self) -> "AuditQuerySet":
        return self.filter(state__in=CLOSED_STATES)


class Audit(models.Model):
    """One hand-over of a deal to audit, from the wrap-up to its closing outcome.

    A deal may be audited again after a flake or a dispute (a new wrap-up, a
    new Audit); the old one stays as it closed. At most one is open per deal.
    """

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="audits")
    # Who sold the deal when it was handed to audit (the rep who wrapped it up):
    # the audit report credits its outcome to them, even if a handover gives the
    # deal to someone else before the call (pipeline.team.user_deactivate).
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    wrap_up = models.OneToOneField(WrapUpChecklist, on_delete=models.PROTECT, related_name="audit")
    state = models.CharField(max_length=16, choices=AuditState.choices, default=AuditState.QUEUED)

    # Deadlines, as data for the queue and the reminders.
    call_window_start = models.DateTimeField()
    call_window_end = models.DateTimeField()
    retry_at = models.DateTimeField(null=True, blank=True, help_text="After a no-answer.")
    callback_at = models.DateTimeField(
        null=True, blank=True, help_text="The time the customer asked to be called back."
    )
    next_call_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the next call is due: the window's start, the retry or the "
        "call-back time; empty once the audit is closed.",
    )
    no_answer_count = models.PositiveSmallIntegerField(default=0)

    # A claim keeps two auditors from phoning one customer; it lapses if abandoned.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_claims",
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)

    # Set when the manager should hear about it (a dispute, a flake).
    escalated_at = models.DateTimeField(null=True, blank=True)
    # A dispute is decided by the rep's manager, with a reason
    # (audits.services.audit_dispute_decide); empty while it awaits them.
    decision = models.CharField(
        max_length=16, choices=DisputeDecision.choices, blank=True, default=DisputeDecision.NONE
    )
    decision_reason = MaskedTextField("why", blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_decisions",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every recorded attempt: an outcome submitted from an older
    # call screen is refused instead of recorded twice.
    version = models.PositiveIntegerField(default=1)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["call_window_start", "id"]
        constraints = [
            # Two open audits would mean two auditors phoning one customer.
            models.UniqueConstraint(
                fields=["deal"],
                condition=Q(state__in=OPEN_STATES),
                name="audit_one_open_per_deal",
            ),
            models.CheckConstraint(
                condition=Q(state__in=CLOSED_STATES, closed_at__isnull=False)
                | Q(state__in=OPEN_STATES, closed_at__isnull=True),
                name="audit_closed_exactly_when_in_closed_state",
            ),
            models.CheckConstraint(
                condition=Q(no_answer_count__lte=FLAKE_AFTER_NO_ANSWERS),
                name="audit_no_answers_at_most_flake_limit",
            ),
            # Only a dispute is decided, and a decision names who, when and why.
            models.CheckConstraint(
                condition=Q(decision="") | Q(state=AuditState.DISPUTED),
                name="audit_decision_only_on_a_dispute",
            ),
            models.CheckConstraint(
                condition=Q(
                    decision="",
                    decided_by__isnull=True,
                    decided_at__isnull=True,
                    decision_reason="",
                )
                | (
                    ~Q(decision="")
                    & Q(decided_by__isnull=False, decided_at__isnull=False)
                    & ~Q(decision_reason="")
                ),
                name="audit_decision_is_complete",
            ),
            # At most one dispute of a deal awaits its manager.
            models.UniqueConstraint(
                fields=["deal"],
                condition=Q(state=AuditState.DISPUTED, decision=""),
                name="audit_one_dispute_awaiting_per_deal",
            ),
        ]
        indexes = [
            # The queue page and the reminders' audits_due/audits_overdue scan
            # open audits by when their next call is due.
            models.Index(
                fields=["next_call_at"],
                condition=Q(state__in=OPEN_STATES),
                name="audit_open_by_next_call",
            ),
            models.Index(fields=["deal", "state"]),
            # The manager's report counts audits per seller and state.
            models.Index(fields=["rep", "state"], name="audit_rep_state"),
        ]

    def __str__(self) -> str:
        return f"Audit #{self.pk} of deal #{self.deal_id} ({self.get_state_display()})"

    def delete(self, *args, **kwargs):
        raise TypeError("Verification records are kept: they are never deleted.")

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def awaits_decision(self) -> bool:
        """Disputed, and the rep's manager has not decided yet."""
        return self.state == AuditState.DISPUTED and not self.decision

    def claim_is_live(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return bool(self.claimed_by_id and self.claim_expires_at and self.claim_expires_at > now)

    def is_claimed_by(self, user, now: datetime | None = None) -> bool:
        return self.claimed_by_id == user.pk and self.claim_is_live(now)

    def is_overdue(self, now: datetime | None = None) -> bool:
        """Queued, and its window closed with no attempt made (escalates to a manager)."""
        now = now or timezone.now()
        return self.state == AuditState.QUEUED and self.call_window_end <= now

    def is_due(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.is_open and self.next_call_at is not None and self.next_call_at <= now


class CallScriptQuerySet(AppendOnlyQuerySet):
    def current(self) -> "CallScript":
        """The newest version; the script Cleared ships with if there is none yet."""
        script = self.order_by("-version").first()
        if script is None:
            script, _ = self.get_or_create(version=1, defaults=DEFAULT_SCRIPT)
        return script


# The script Cleared ships with (migration 0002 wrote the same as version 1).
DEFAULT_SCRIPT = {
    "opening": (
        "Hello, I'm calling from the order desk to confirm the order $company placed "
        "with $rep. It takes two minutes; this call is recorded."
    ),
    "identity": "Am I speaking with $customer, and may I confirm a couple of details with you?",
    "purchase": "You agreed with $rep to buy: $what. Is that right?",
    "price": "The price agreed is $amount. Is that correct?",
    "terms": (
        "Payment: $payment, with $deposit; delivery is expected on $delivery. "
        "Is that what you agreed to?"
    ),
    "right_to_cancel": (
        "You can cancel this order before delivery by calling $rep on $rep_phone. "
        "Do you understand your right to cancel?"
    ),
    "closing": "Thank you, your order is confirmed. $rep will be in touch about the delivery.",
}

SCRIPT_QUESTIONS = (
    ("identity", "Identity"),
    ("purchase", "The purchase"),
    ("price", "The price"),
    ("terms", "The terms"),
    ("right_to_cancel", "Right to cancel"),
)


class CallScript(AppendOnlyModel):
    """What the auditor reads. Versioned: a change is a new version, never an edit.

    Each question is a template; ``$customer``, ``$company``, ``$what``,
    ``$amount``, ``$payment``, ``$deposit``, ``$delivery``, ``$rep`` and
    ``$rep_phone`` are filled in from the deal.
    """

    version = models.PositiveIntegerField(unique=True)
    opening = MaskedTextField(help_text="Read before the questions.")
    identity = MaskedTextField("identity question")
    purchase = MaskedTextField("purchase question")
    price = MaskedTextField("price question")
    terms = MaskedTextField("terms question")
    right_to_cancel = MaskedTextField("right-to-cancel question")
    closing = MaskedTextField(help_text="Read after a confirmed call.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = CallScriptQuerySet.as_manager()

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"Call script v{self.version}"

    @staticmethod
    def facts(deal: Deal) -> dict[str, str]:
        return {
            "customer": deal.customer.name,
            "company": deal.customer.company or deal.customer.name,
            "what": deal.title,
            "amount": money_text(deal.amount),
            "payment": deal.get_payment_option_display(),
            "deposit": "a deposit first" if deal.deposit_required else "no deposit",
            "delivery": f"{deal.expected_delivery_date:%A %-d %B %Y}",
            "rep": str(deal.rep),
            "rep_phone": deal.rep.direct_phone or "their direct number",
        }

    def render(self, deal: Deal) -> dict:
        """The script with the deal's facts filled in, question by question."""
        facts = self.facts(deal)

        def fill(text: str) -> str:
            return Template(text).safe_substitute(facts)

        return {
            "opening": fill(self.opening),
            "questions": [
                {"key": key, "label": label, "text": fill(getattr(self, key))}
                for key, label in SCRIPT_QUESTIONS
            ],
            "closing": fill(self.closing),
        }


class Outcome(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed"
    NO_ANSWER = "no_answer", "No answer"
    CALL_BACK = "call_back", "Call back"
    DISPUTED = "disputed", "Disputed"
    DECLINED = "declined", "Declined"


class CallAttempt(AppendOnlyModel):
    """One call to the customer and its outcome. Append-only: never edited or deleted."""

    audit = models.ForeignKey(Audit, on_delete=models.PROTECT, related_name="attempts")
    auditor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="call_attempts"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    script = models.ForeignKey(CallScript, on_delete=models.PROTECT, related_name="attempts")
    # {"identity": "yes", "purchase": "no", ...}; questions not reached are absent.
    answers = MaskedJSONField(default=dict, blank=True)
    callback_at = models.DateTimeField(null=True, blank=True)
    recording_ref = MaskedCharField(
        "recording reference",
        max_length=500,
        blank=True,
        help_text="The call recording's URL or id in the phone system.",
    )
    notes = MaskedTextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["audit", "-at"]),
            models.Index(fields=["auditor", "outcome"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(outcome=Outcome.CALL_BACK) | Q(callback_at__isnull=False),
                name="call_attempt_call_back_has_a_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} — audit #{self.audit_id}"
