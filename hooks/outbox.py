"""Writing the outbox: one Event and a Delivery per subscription that wants it.

``event_record`` runs inside the transaction of the change it reports (a
``post_save`` receiver in hooks.sources, or a scan for what time alone
changes): the event commits with the change or not at all, and the workers
are told only after the commit.
"""

import logging
from datetime import datetime
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from hooks.models import Delivery, Event, Subscription
from pipeline.compiled import Compiled
from pipeline.masking import mask_json
from pipeline.models import Deal

logger = logging.getLogger(__name__)

# The queue of its own (config/settings.py routes every hooks.* task there).
QUEUE = "webhooks"


def api_url(kind: str, pk: int) -> str:
    """The object's address in the REST API (``/api/v1/<kind>/<id>``), absolute."""
    return f"{settings.CLEARED_SITE_URL}/api/v1/{kind}/{pk}"


def money(amount: Decimal) -> str:
    """ "$9,600" or "$9,600.50": the amount as the chat line says it."""
    text = f"{amount:,.2f}"
    return settings.CURRENCY_SYMBOL + (text[:-3] if text.endswith(".00") else text)


def person_name(user) -> str:
    if user is None:
        return "Cleared"
    return user.first_name or user.get_username()


def deal_data(deal: Deal) -> dict:
    """The deal's fields a subscriber may see: no notes, no payment methods."""
    return {
        "id": deal.pk,
        "url": api_url("deals", deal.pk),
        "web_url": settings.CLEARED_SITE_URL + deal.get_absolute_url(),
        "title": deal.title,
        "customer": deal.customer.name,
        "rep": deal.rep.get_username(),
        "amount": str(deal.amount),
        "currency": settings.CURRENCY,
        "stage": deal.stage,
        "payment_option": deal.payment_option,
    }


def chat_parts(deal: Deal, what: str) -> dict:
    """ "Riley's deal *Website redesign* payment cleared: $9,600", in parts."""
    return {"who": person_name(deal.rep), "title": deal.title, "what": what}


# Every write that may be news asks which subscriptions want it (most find none):
# the question is compiled once (``pipeline.compiled``).
_LIVE = Compiled(
    lambda: Subscription.objects.filter(is_active=True).order_by().values_list("pk", "events")
)


def wanting(event_type: str) -> list[Subscription]:
    """Live subscriptions that want this type of event (one query when none does:
    most writes stop here)."""
    ids = [pk for pk, events in _LIVE.rows() if Subscription(events=events).wants(event_type)]
    if not ids:
        return []
    return list(Subscription.objects.filter(pk__in=ids, is_active=True).select_related("owner"))


def in_scope(subscriptions: list[Subscription], deal_id: int) -> list[Subscription]:
    """Those whose owner may see the deal: the owner's view of the deals
    (pipeline.access's rule, ``Deal.objects.visible_to``) is a subscription's scope."""
    return [
        s
        for s in subscriptions
        if s.owner.is_active and Deal.objects.visible_to(s.owner).filter(pk=deal_id).exists()
    ]


def scoped_deal_ids(subscriptions: list[Subscription], deal_ids: set[int]) -> set[int]:
    """Which of these deals at least one of the subscriptions' owners may see."""
    if any(s.owner.is_superuser and s.owner.is_active for s in subscriptions):
        return set(deal_ids)
    found: set[int] = set()
    for s in subscriptions:
        if s.owner.is_active:
            visible = Deal.objects.visible_to(s.owner).filter(pk__in=deal_ids - found)
            found.update(visible.values_list("pk", flat=True))
    return found


def event_record(
    *,
    event_type: str,
    key: str,
    deal: Deal | None,
    data: dict,
    chat: dict,
    occurred_at: datetime | None = None,
    subscriptions: list[Subscription] | None = None,
) -> Event | None:
    """Write one event and its deliveries in the current transaction; None if
    nobody wants it or it was written before (``key`` is unique).

    ``subscriptions``: deliver to these only (a test event).
    """
    targets = subscriptions
    if targets is None:
        targets = wanting(event_type)
        if deal is not None:
            targets = in_scope(targets, deal.pk)
    if not targets or Event.objects.filter(key=key).exists():
        return None
    try:
        with transaction.atomic():  # a savepoint: a lost race must not break the writer's
            event = Event.objects.create(
                type=event_type,
                key=key,
                deal_id=deal.pk if deal else None,
                data=mask_json(data),
                chat=mask_json(chat),
                occurred_at=occurred_at or timezone.now(),
            )
    except IntegrityError:
        return None  # another transaction wrote this key first
    deliveries = Delivery.objects.bulk_create(
        Delivery(event=event, subscription=s) for s in targets
    )
    ids = [d.pk for d in deliveries if d.pk is not None]
    if not ids:  # a database that does not return ids from a bulk insert
        ids = list(event.deliveries.values_list("pk", flat=True))
    transaction.on_commit(lambda: queue_deliveries(ids))
    return event


def queue_deliveries(delivery_ids: list[int]) -> None:
    """Queue a send after the commit (by name: the tasks module reads this one).

    If the broker is down this is only logged: beat's run picks them up.
    """
    try:
        current_app.send_task("hooks.deliver", args=[delivery_ids], queue=QUEUE, retry=False)
    except Exception as exc:
        logger.warning("Could not queue webhook deliveries %s: %s", delivery_ids, exc)
