"""Credit notes: what voiding an invoice leaves on the books.

An invoice is never changed once issued; voiding one (``billing.services.invoice_void``)
issues a credit note for its amount, numbered from its own gap-free series
("CN-00001", like invoices: ``CreditNoteSequence`` is locked in the void's
transaction, so a rolled-back void gives its number back). The invoice page
and the customer's statement show it. Models here, registered with billing
``billing.models`` (which imports them).
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from pipeline.masking import MaskedCharField


def credit_note_display_number(number: int) -> str:
    """A credit note's number as every page names it: "CN-00001"."""
    return f"{settings.CLEARED_CREDIT_NOTE_PREFIX}{number:05d}"


class CreditNoteSequence(models.Model):
    """The deployment's one credit-note counter (its own series: gap-free, never an
    invoice's number)."""

    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        app_label = "billing"

    def __str__(self) -> str:
        return f"Last credit note number: {self.last_number}"


class CreditNote(models.Model):
    """The credit for a voided invoice: its whole amount, the reason, who and when."""

    invoice = models.OneToOneField(
        "billing.Invoice", on_delete=models.PROTECT, related_name="credit_note"
    )
    number = models.PositiveIntegerField(unique=True, editable=False)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = MaskedCharField(max_length=300)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "billing"
        ordering = ["-number"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_note_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return credit_note_display_number(self.number)


def next_credit_note_number() -> int:
    """Take the next number from the credit-note counter, locked until commit."""
    CreditNoteSequence.objects.get_or_create(pk=1)
    sequence = CreditNoteSequence.objects.select_for_update().get(pk=1)
    CreditNoteSequence.objects.filter(pk=1).update(last_number=F("last_number") + 1)
    return sequence.last_number + 1
