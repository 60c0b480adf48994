"""What Cleared keeps of the processor: its customer ids and the PaymentIntents it asked
for, each tied to the Cleared payments its attempts recorded. Ids only: card details
stay at the processor (Stripe objects carry a brand and last 4 at most)."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models import Instalment, Invoice, Payment
from pipeline.models import Customer, Deal


class ProcessorCustomer(models.Model):
    """The processor's customer (Stripe ``cus_…``) for one Cleared customer."""

    customer = models.OneToOneField(
        Customer, on_delete=models.PROTECT, related_name="processor_customer"
    )
    processor_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.processor_id} for customer #{self.customer_id}"


class IntentPurpose(models.TextChoices):
    PAY_LINK = "pay_link", "Paid from the customer's link"
    OFF_SESSION = "off_session", "Card on file charged"


class Intent(models.Model):
    """A PaymentIntent (Stripe ``pi_…``) Cleared asked the processor for.

    From the customer's link there is one per invoice (or per instalment of a
    plan), found again on every page load: the same money can't be asked twice.
    Each try the customer makes records a pending ``billing.Payment``
    (``IntentPayment``); the processor's answer clears or bounces it.
    """

    processor_id = models.CharField(max_length=255, unique=True)
    purpose = models.CharField(max_length=16, choices=IntentPurpose.choices)
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="intents")
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="intents"
    )
    instalment = models.ForeignKey(
        Instalment, null=True, blank=True, on_delete=models.PROTECT, related_name="intents"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="intent_amount_positive"),
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(purpose="pay_link", instalment__isnull=True),
                name="one_link_intent_per_invoice",
            ),
            models.UniqueConstraint(
                fields=["instalment"],
                condition=Q(purpose="pay_link", instalment__isnull=False),
                name="one_link_intent_per_instalment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.processor_id} ({self.get_purpose_display()}, deal #{self.deal_id})"


class IntentPayment(models.Model):
    """One try at paying an intent: the Cleared payment it recorded (pending at first)."""

    intent = models.ForeignKey(Intent, on_delete=models.PROTECT, related_name="attempts")
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, related_name="processor_attempt"
    )
    # The intent's last charge when this try began (a decline of an earlier try):
    # a decline is this try's only if it names a newer charge.
    charge_before = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Payment {self.payment_id} through {self.intent.processor_id}"


# The card on file (online/on_file.py): its own module, loaded here for the app.
from online.on_file_models import OnFileCharge, OnFileSetup, TeamCharging  # noqa: E402, F401
