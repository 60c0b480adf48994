"""A deal's terms history: every change of what the customer agreed to.

The terms are what the auditor confirms with the customer: the amount, the
payment option, what is sold, the customer and the delivery date
(``pipeline.terms_freeze.TERMS_FIELDS``). Each change of them is one
``TermsChange`` row, shown on the deal's timeline: who asked, when, each
field from and to, why, and who approved it. Written only by
``pipeline.services.deal_update`` and ``pipeline.terms_freeze.terms_change_decide``.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from pipeline.masking import MaskedCharField, MaskedJSONField, MaskedTextField


class TermsPath(models.TextChoices):
    """How a change of terms was made (DOMAIN.md, "Terms are frozen by the audit")."""

    FREE = "free", "Changed before the audit"
    BACK_TO_AUDIT = "back_to_audit", "Changed and sent back to audit"
    MANAGER = "manager", "Asked the manager"


class TermsChangeState(models.TextChoices):
    APPLIED = "applied", "Applied"
    ASKED = "asked", "Awaiting the manager"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Declined"


class TermsChange(models.Model):
    """One change of a deal's terms, or a rep's request to change them.

    ``changes``: ``{field: {"label", "from", "to"}}`` with the values as text
    (an amount "9600.00", a date "2026-12-24", a customer's id). A change
    asked of the manager is applied only when approved; the decision is a
    compare-and-set on ``state`` (asked → approved/declined), so two clicks
    decide once.
    """

    deal = models.ForeignKey(
        "pipeline.Deal", on_delete=models.PROTECT, related_name="terms_changes"
    )
    path = models.CharField(max_length=16, choices=TermsPath.choices)
    state = models.CharField(max_length=10, choices=TermsChangeState.choices)
    changes = MaskedJSONField(default=dict)
    reason = MaskedTextField("why", blank=True)
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    asked_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = MaskedCharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-asked_at", "-id"]
        indexes = [
            models.Index(fields=["deal", "-asked_at"]),
            # The reminder rules (reminders/rules/terms.py): requests asked, and
            # requests decided, lately.
            models.Index(fields=["asked_at"], name="terms_change_asked"),
            models.Index(
                fields=["decided_at"],
                name="terms_change_decided",
                condition=Q(decided_at__isnull=False),
            ),
        ]
        constraints = [
            # One open question per deal: asking twice is refused.
            models.UniqueConstraint(
                fields=["deal"], condition=Q(state="asked"), name="one_open_terms_change_per_deal"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["asked", "applied"], decided_at__isnull=True)
                | (
                    Q(state__in=["approved", "declined"])
                    & Q(decided_at__isnull=False, decided_by__isnull=False)
                ),
                name="terms_change_decided_with_who_and_when",
            ),
            models.CheckConstraint(
                condition=Q(path="manager") | Q(state="applied"),
                name="terms_change_only_manager_path_is_asked",
            ),
        ]

    def __str__(self) -> str:
        return f"Terms change on deal #{self.deal_id} ({self.state})"

    @property
    def summary(self) -> str:
        """The change in words: "Amount 9,600.00 → 12,600.00; Delivery date …"."""
        return "; ".join(
            f"{change['label']} {change['from_text']} → {change['to_text']}"
            for change in self.changes.values()
        )

    @property
    def is_applied(self) -> bool:
        return self.state in (TermsChangeState.APPLIED, TermsChangeState.APPROVED)
