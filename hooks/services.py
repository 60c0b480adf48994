"""Subscriptions: made, switched on and off, deleted, tested; deliveries resent.

A manager's subscriptions are their own and carry their team's events; an
operator (a superuser) sees and may change every subscription. Everyone
else is refused (``pipeline.access.require_manager``).
"""

from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from hooks import outbox
from hooks.models import (
    TEST_EVENT,
    Delivery,
    DeliveryState,
    EventType,
    Subscription,
    random_letters,
)
from hooks.targets import TargetRefused, check_target
from pipeline.access import require_manager
from pipeline.models import User


class HooksError(Exception):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def subscriptions_visible_to(user: User) -> QuerySet:
    """A manager's own subscriptions; every one for an operator; none for anyone else."""
    if user.is_superuser:
        return Subscription.objects.all()
    if user.is_manager:
        return Subscription.objects.filter(owner=user)
    return Subscription.objects.none()


def get_subscription_for(user: User, pk: int) -> Subscription:
    """The subscription if this user may manage it: 403 for a non-manager, else 404."""
    require_manager(user, "Webhooks are for managers.")
    return get_object_or_404(subscriptions_visible_to(user).select_related("owner"), pk=pk)


@transaction.atomic
def subscription_create(
    *, owner: User, url: str, events: list[str], format: str, description: str = ""
) -> Subscription:
    """A new subscription for the owner's team; its secret is shown once, by the caller."""
    require_manager(owner, "Webhooks are for managers.")
    try:
        check_target(url)
    except TargetRefused as refused:
        raise HooksError(str(refused), field="url") from refused
    chosen = [e for e in EventType.values if e in events]
    if not chosen:
        raise HooksError("Choose at least one event.", field="events")
    return Subscription.objects.create(
        owner=owner, url=url, events=chosen, format=format, description=description.strip()
    )


def subscription_enable(*, subscription: Subscription) -> None:
    """Switch it back on; what waited while it was off goes out at the next run."""
    Subscription.objects.filter(pk=subscription.pk).update(
        is_active=True, failing_since=None, disabled_at=None, disabled_reason=""
    )


def subscription_disable(*, subscription: Subscription, actor: User) -> None:
    Subscription.objects.filter(pk=subscription.pk, is_active=True).update(
        is_active=False, disabled_at=timezone.now(), disabled_reason=f"Disabled by {actor}."
    )


def subscription_delete(*, subscription: Subscription) -> None:
    """Gone with its delivery log; events other subscriptions still wait for stay."""
    subscription.delete()


@transaction.atomic
def subscription_send_test(*, subscription: Subscription, actor: User):
    """A ``webhook.test`` event to this subscription only, through the real delivery path."""
    if not subscription.is_active:
        raise HooksError("Enable the subscription first: a disabled one is sent nothing.")
    return outbox.event_record(
        event_type=TEST_EVENT,
        key=f"{TEST_EVENT}:{subscription.pk}:{random_letters(16)}",
        deal=None,
        data={"message": "A test event from Cleared.", "sent_by": actor.get_username()},
        chat={"what": f"Test event from Cleared, sent by {outbox.person_name(actor)}: it works."},
        subscriptions=[subscription],
    )


@transaction.atomic
def delivery_resend(*, delivery: Delivery) -> Delivery:
    """Send a delivery again (the log's Resend), under the same ``webhook-id``:
    a receiver that already has it deduplicates it."""
    Delivery.objects.filter(pk=delivery.pk).exclude(state=DeliveryState.SENDING).update(
        state=DeliveryState.PENDING, next_attempt_at=timezone.now(), claimed_until=None
    )
    transaction.on_commit(lambda: outbox.queue_deliveries([delivery.pk]))
    delivery.refresh_from_db()
    return delivery
