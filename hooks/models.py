"""Outgoing webhooks: who subscribes to what, the outbox of events, one delivery
per (event, subscription); and each person's private calendar address."""

import base64
import secrets
import string

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from pipeline.masking import MaskedCharField, MaskedJSONField, MaskedTextField


class EventType(models.TextChoices):
    """What a subscription may ask for (README, "Outgoing webhooks")."""

    DEAL_PROMISED = "deal.promised", "A deal is promised"
    DEAL_STAGE_CHANGED = "deal.stage_changed", "A deal changes stage"
    DEAL_LOST = "deal.lost", "A deal is lost"
    PAYMENT_RECORDED = "payment.recorded", "A payment is recorded"
    PAYMENT_CLEARED = "payment.cleared", "A payment clears"
    PAYMENT_BOUNCED = "payment.bounced", "A payment bounces"
    INVOICE_ISSUED = "invoice.issued", "An invoice is issued"
    INVOICE_OVERDUE = "invoice.overdue", "An invoice is overdue"
    AUDIT_OUTCOME_RECORDED = "audit.outcome_recorded", "An audit call's outcome is recorded"
    CUSTOMER_ANSWERED = "customer.answered", "A customer answers through their link"
    REMINDER_DUE = "reminder.due", "A reminder falls due"


# Sent by "Send a test event" only; never subscribed to.
TEST_EVENT = "webhook.test"


class Format(models.TextChoices):
    JSON = "json", "JSON (Standard Webhooks)"
    SLACK = "slack", "Slack incoming webhook"
    TEAMS = "teams", "Microsoft Teams incoming webhook"


def random_letters(count: int) -> str:
    """A random id of lowercase letters: a run of random digits could read as a card
    number to the scanner (pipeline.card_scan), as receivables' Message-IDs avoid too."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(count))


def new_secret() -> str:
    """A signing secret as the standardwebhooks library reads it: ``whsec_`` + base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Subscription(models.Model):
    """A URL that wants some of the events its owner may see.

    A manager's subscription gets the events of their team's deals; an
    operator's (a superuser's) gets every deal's: the owner's view of the deals
    (pipeline.access) is the subscription's scope. The secret signs every
    delivery; it is shown once, when the subscription is made.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    url = models.URLField(max_length=500)
    description = MaskedCharField(max_length=120, blank=True)
    events = models.JSONField(default=list)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.JSON)
    # Needed in clear to sign: stored like the deployment's other secrets.
    secret = models.CharField(max_length=80, default=new_secret, editable=False)
    is_active = models.BooleanField(default=True)
    # Set at the first failed delivery, cleared by the next success: a
    # subscription failing for HOOKS_DISABLE_AFTER_HOURS is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = MaskedCharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Every event's fan-out: the live subscriptions.
            models.Index(fields=["owner"], condition=Q(is_active=True), name="hook_sub_active"),
        ]

    def __str__(self) -> str:
        return self.url

    def get_absolute_url(self) -> str:
        return reverse("hooks:subscription_detail", args=[self.pk])

    def wants(self, event_type: str) -> bool:
        return event_type in self.events

    @property
    def event_labels(self) -> list[str]:
        return [EventType(e).label for e in self.events if e in EventType.values]


class Event(models.Model):
    """One thing that happened, in the outbox: written in the transaction of the change.

    ``key`` names its cause ("payment.cleared:paymentevent:12",
    "invoice.overdue:invoice:9") and is unique: a source seen twice (a scan
    run twice, a replayed signal) makes one event. ``id`` is the Standard
    Webhooks message id every delivery of it carries.
    """

    id = models.CharField(max_length=40, primary_key=True, editable=False)
    type = models.CharField(max_length=40)
    key = models.CharField(max_length=120, unique=True)
    deal_id = models.PositiveIntegerField(null=True, blank=True)
    # The JSON body's "data": what the subscribers' owners may see, masked.
    data = MaskedJSONField(default=dict)
    # The chat line's parts: who, the deal's title, what happened.
    chat = MaskedJSONField(default=dict)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"

    def save(self, *args, **kwargs):
        if not self.id:
            self.id = "msg_" + random_letters(24)
        super().save(*args, **kwargs)


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Failed, will retry"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Gave up"


# Waiting for a worker: claimable when next_attempt_at has come.
WAITING = (DeliveryState.PENDING, DeliveryState.RETRYING)


class Delivery(models.Model):
    """One event to one subscription: claimed by compare-and-set, retried with back-off."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Held by the worker sending it now; a worker killed mid-send lets go when it runs out.
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The claim's own token: its outcome is written only while the claim is still its.
    claim = models.CharField(max_length=16, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = MaskedTextField(blank=True)
    last_error = MaskedCharField(max_length=300, blank=True)
    # The body as last sent (the delivery log shows it).
    body = MaskedTextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Each event id once per subscription: a database fact.
            models.UniqueConstraint(fields=["event", "subscription"], name="delivery_once"),
        ]
        indexes = [
            # The beat's run (hooks.delivery.deliveries_run): what waits, soonest first.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state__in=["pending", "retrying"]),
                name="delivery_waiting",
            ),
            # A worker killed mid-send: its claims, to take over when they lapse.
            models.Index(
                fields=["claimed_until"], condition=Q(state="sending"), name="delivery_sending"
            ),
            # The delivery log: one subscription's, newest first.
            models.Index(fields=["subscription", "-created_at"], name="delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → subscription {self.subscription_id} ({self.state})"


class CalendarFeed(models.Model):
    """A person's private calendar address: only the hash of its secret is kept.

    Regenerating replaces the hash (the old address answers 404); revoking
    deletes the row.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Calendar feed of {self.user}"
