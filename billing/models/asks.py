"""Terms exceptions: a manager's waiver or allow-invoicing (append-only), and a rep's
"Ask my manager" request for one, with its decision."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from pipeline.ledger import AppendOnlyModel
from pipeline.masking import MaskedCharField, MaskedTextField
from pipeline.models import Customer, Deal

# --- Terms exceptions -------------------------------------------


class ExceptionKind(models.TextChoices):
    WAIVE_DEPOSIT = "waive_deposit", "Deposit waived"
    ALLOW_INVOICING = "allow_invoicing", "Invoicing allowed for a slow payer"


class TermsException(AppendOnlyModel):
    """A manager's exception to the terms policy, with the reason for it.

    Waiving a deposit is for one deal (and sets ``Deal.deposit_required`` to
    False through ``billing.services.deposit_waive``). Allowing invoicing is
    for one deal when it names one (a rep's request approved: that deal may be
    invoiced, ``billing.services.exception_request_decide``), else for a
    customer: ``pipeline.selectors.customer_terms`` lets a slow payer be
    invoiced while the exception is valid (``valid_until``, inclusive; empty
    means until further notice), read from the copy on the customer row that
    ``billing.services.invoicing_allow`` writes.
    """

    kind = models.CharField(max_length=20, choices=ExceptionKind.choices)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="terms_exceptions"
    )
    deal = models.ForeignKey(
        Deal, null=True, blank=True, on_delete=models.PROTECT, related_name="terms_exceptions"
    )
    reason = MaskedTextField()
    valid_until = models.DateField(null=True, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-granted_at", "-id"]
        indexes = [models.Index(fields=["customer", "kind", "-granted_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind=ExceptionKind.WAIVE_DEPOSIT) | Q(deal__isnull=False),
                name="waive_deposit_names_a_deal",
            ),
            models.UniqueConstraint(
                fields=["deal"],
                condition=Q(kind=ExceptionKind.WAIVE_DEPOSIT),
                name="one_deposit_waiver_per_deal",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.customer} by {self.granted_by}"


class RequestState(models.TextChoices):
    ASKED = "asked", "Asked"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Declined"


class ExceptionRequest(models.Model):
    """A rep asks their manager to lift a refusal of the terms policy ("Ask my manager").

    For one deal: allow invoicing it although the customer is a slow payer
    (the deal is logged at once, as an invoice deal with a deposit, and is not
    invoiced until the manager approves), or waive its deposit. The manager
    approves or declines from the reminder the request makes; the decision is
    a compare-and-set on ``state`` (asked → approved/declined), so two clicks
    decide once. Approved, it is applied as a ``TermsException`` through
    ``billing.services`` (``exception``). Written only by ``billing.services``.
    """

    kind = models.CharField(max_length=20, choices=ExceptionKind.choices)
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="exception_requests")
    rep = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The rep's words, shown to the manager in the reminder.
    reason = MaskedTextField()
    state = models.CharField(
        max_length=10, choices=RequestState.choices, default=RequestState.ASKED
    )
    asked_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = MaskedCharField(max_length=300, blank=True)
    exception = models.OneToOneField(
        TermsException,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="request",
        help_text="The exception the approval granted.",
    )

    class Meta:
        ordering = ["-asked_at", "-id"]
        indexes = [
            # The reminder rules (reminders/rules/m13b.py): requests asked, and
            # requests decided, lately.
            models.Index(fields=["asked_at"], name="exception_request_asked"),
            models.Index(
                fields=["decided_at"],
                name="exception_request_decided",
                condition=Q(decided_at__isnull=False),
            ),
        ]
        constraints = [
            # One open question per deal and kind: asking twice is refused.
            models.UniqueConstraint(
                fields=["deal", "kind"],
                condition=Q(state="asked"),
                name="one_open_exception_request_per_deal",
            ),
            models.CheckConstraint(
                condition=(Q(state="asked") & Q(decided_at__isnull=True))
                | (~Q(state="asked") & Q(decided_at__isnull=False) & Q(decided_by__isnull=False)),
                name="exception_request_decided_with_who_and_when",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} asked on deal #{self.deal_id} ({self.state})"

    @property
    def what(self) -> str:
        """What is asked, in words: "allow invoicing this slow payer"."""
        if self.kind == ExceptionKind.WAIVE_DEPOSIT:
            return "waive the deposit"
        return "allow invoicing this slow payer"
