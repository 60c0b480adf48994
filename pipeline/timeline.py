"""A deal's timeline, as rows: each move of stage, each handover to another rep,
each touch with the customer. Models of the pipeline app (``pipeline.models``
imports them at its end, as it does ``deal_changes`` and ``not_paid``)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from pipeline.ledger import AppendOnlyModel
from pipeline.masking import MaskedCharField, MaskedTextField
from pipeline.models import Deal
from pipeline.stages import Stage


class StageEvent(AppendOnlyModel):
    """An immutable record of one change of stage: who, when, from, to, why."""

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="stage_events")
    from_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty when Cleared moved the deal from a recorded fact.",
    )
    at = models.DateTimeField(default=timezone.now)
    reason = MaskedTextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["deal", "-at"])]

    def __str__(self) -> str:
        return f"{self.deal_id}: {self.from_stage or '—'} → {self.to_stage}"


class Reassignment(AppendOnlyModel):
    """An immutable record that a deal was given from one rep to another: who, when, why.

    Written when a manager deactivates a leaver and hands their open deals on
    (pipeline.services.user_deactivate); shown on the deal's timeline.
    """

    deal = models.ForeignKey(
        "pipeline.Deal", on_delete=models.PROTECT, related_name="reassignments"
    )
    from_rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    to_rep = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    reason = MaskedCharField(max_length=300)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["deal", "-at"])]

    def __str__(self) -> str:
        return f"{self.deal_id}: {self.from_rep_id} → {self.to_rep_id}"


class TouchKind(models.TextChoices):
    CALL = "call", "Call"
    VISIT = "visit", "Visit"
    EMAIL = "email", "Email"
    MEETING = "meeting", "Meeting"
    # Written by Cleared, not a rep: the customer answered through their signed
    # link (receivables.links): "I've paid" or "I'll pay on …". Not offered in the touch form.
    CUSTOMER_LINK = "link", "Customer's own answer"


class Touch(models.Model):
    """One contact with the customer; always closes on something agreed."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="touches")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="touches"
    )
    kind = models.CharField(max_length=10, choices=TouchKind.choices)
    happened_at = models.DateTimeField(default=timezone.now)
    discussed = MaskedTextField("what was discussed")
    agreed_to = MaskedCharField("what the customer agreed to", max_length=300)
    next_step = MaskedCharField(max_length=300)
    next_step_date = models.DateField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-happened_at", "-id"]
        indexes = [models.Index(fields=["deal", "-happened_at"])]
        verbose_name_plural = "touches"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on deal #{self.deal_id}"
