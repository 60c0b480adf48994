"""The card on file, set up by the customer (a SetupIntent from a link the rep sends)
and charged after delivery (an off-session PaymentIntent); the team's auto-charge
setting. Loaded by ``online.models``."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models import Payment, PaymentMethod
from online.models import Intent
from pipeline.masking import MaskedCharField, MaskedEmailField
from pipeline.models import Deal


class OnFileSetup(models.Model):
    """A link sent to the customer to put a card on file for a deal.

    The URL carries ``key`` signed (``online.on_file.setup_token``); the
    SetupIntent (``seti_…``) is made with the row as its idempotency key, so
    one link is one SetupIntent however often the page is opened.
    """

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="on_file_setups")
    key = models.CharField(max_length=64, unique=True, editable=False)
    processor_id = MaskedCharField(max_length=255, blank=True)
    sent_to = MaskedEmailField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    method = models.OneToOneField(
        PaymentMethod, null=True, blank=True, on_delete=models.PROTECT, related_name="setup"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Card-on-file link for deal #{self.deal_id}"


class OnFileCharge(models.Model):
    """Charging the card on file for what is left to pay, once delivered.

    Written (under the deal's lock) before the processor is asked; its id is
    the charge's idempotency key, so a double click or a retried worker never
    charges twice. ``intent`` and ``payment`` are filled from the processor's
    answer; ``needs_action_at`` when the customer must authenticate (3-D Secure).
    """

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="on_file_charges")
    method = models.ForeignKey(PaymentMethod, on_delete=models.PROTECT, related_name="charges")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    charged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty when the team's auto-charge on delivery made it.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    intent = models.OneToOneField(
        Intent, null=True, blank=True, on_delete=models.PROTECT, related_name="on_file_charge"
    )
    payment = models.OneToOneField(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="on_file_charge"
    )
    needs_action_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    declined = MaskedCharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The reconciliation: charges written whose processor answer was never recorded.
            models.Index(
                fields=["created_at"], condition=Q(payment__isnull=True), name="on_file_unanswered"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="on_file_charge_positive"),
        ]

    def __str__(self) -> str:
        return f"Charge of {self.amount} on deal #{self.deal_id}"


class TeamCharging(models.Model):
    """A manager's setting for their team: charge the card on file on delivery."""

    manager = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_charging"
    )
    charge_on_delivery = models.BooleanField(default=False)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Charge on delivery for {self.manager}: {self.charge_on_delivery}"
