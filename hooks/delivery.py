"""Delivering the outbox: claim by compare-and-set, sign, POST, record, back off.

At least once: a delivery is claimed under a lease (``claimed_until``); a
worker killed mid-send lets go when the lease runs out and the next run sends
it again, with the same ``webhook-id``, so a receiver that deduplicates by
id sees each event once. A refusing receiver is retried with a growing
back-off for HOOKS_GIVE_UP_HOURS; a subscription failing that long is
disabled and its owner told by email.
"""

import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from hooks.formats import body_for
from hooks.models import WAITING, Delivery, DeliveryState, Subscription
from hooks.targets import TargetRefused, check_target

logger = logging.getLogger(__name__)

RUN_BATCH = 200
RESPONSE_KEEP = 2000


def _claimable(now: datetime) -> Q:
    """Waiting and due, or sent by a worker whose lease ran out (killed mid-send)."""
    return Q(state__in=WAITING, next_attempt_at__lte=now) | Q(
        state=DeliveryState.SENDING, claimed_until__lte=now
    )


def delivery_claim(*, delivery_id: int, now: datetime | None = None) -> Delivery | None:
    """Take one delivery for this worker: an ``UPDATE … WHERE`` on the state it
    expects, so of two workers handed the same row exactly one sends it."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.HOOKS_LEASE_SECONDS)
    claimed = (
        Delivery.objects.filter(_claimable(now), pk=delivery_id, subscription__is_active=True)
        .order_by()
        .update(state=DeliveryState.SENDING, claimed_until=now + lease, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return Delivery.objects.select_related("event", "subscription").get(pk=delivery_id)


@dataclass
class Response:
    code: int | None
    body: str
    error: str

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead a checked URL to a private address: not followed.
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def signed_headers(*, secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt, signed with the library."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": "application/json",
        "user-agent": "Cleared-Webhooks/1",
    }


def _post(url: str, body: str, headers: dict[str, str]) -> Response:
    try:
        check_target(url)
    except TargetRefused as refused:
        return Response(None, "", str(refused))
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")  # noqa: S310 - http(s) checked
    try:
        with _OPENER.open(request, timeout=settings.HOOKS_TIMEOUT_SECONDS) as answer:
            text = answer.read(RESPONSE_KEEP).decode("utf-8", "replace")
            return Response(answer.status, text, "")
    except urllib.error.HTTPError as refused:
        text = refused.read(RESPONSE_KEEP).decode("utf-8", "replace") if refused.fp else ""
        return Response(refused.code, text, f"HTTP {refused.code}")
    except Exception as exc:  # unreachable, timed out, reset: a failed attempt
        return Response(None, "", f"{exc.__class__.__name__}: {exc}"[:300])


def retry_delay(attempts: int) -> timedelta:
    """Exponential: HOOKS_RETRY_BASE_SECONDS × 3^(attempts−1), at most six hours.

    With the default 10 s: 10 s, 30 s, 90 s, 4.5 min, 13.5 min, 40 min, 2 h, 6 h…
    until HOOKS_GIVE_UP_HOURS after the event.
    """
    seconds = settings.HOOKS_RETRY_BASE_SECONDS * 3 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, 6 * 3600))


def delivery_send(*, delivery_id: int, now: datetime | None = None) -> str:
    """Claim one delivery and send it; returns its state afterwards ("" if not claimed)."""
    delivery = delivery_claim(delivery_id=delivery_id, now=now)
    if delivery is None:
        return ""
    subscription = delivery.subscription
    body = body_for(delivery.event, subscription.format)
    sent_at = timezone.now()
    headers = signed_headers(
        secret=subscription.secret, msg_id=delivery.event_id, body=body, at=sent_at
    )
    response = _post(subscription.url, body, headers)
    return _record(delivery, body, response, timezone.now())


def _record(delivery: Delivery, body: str, response: Response, now: datetime) -> str:
    """Write the attempt's outcome, if this worker still holds the claim."""
    mine = Delivery.objects.filter(
        pk=delivery.pk, state=DeliveryState.SENDING, attempts=delivery.attempts
    )
    common = {
        "claimed_until": None,
        "last_attempt_at": now,
        "response_code": response.code,
        "response_body": response.body,
        "last_error": response.error,
        "body": body,
    }
    if response.ok:
        with transaction.atomic():
            mine.update(state=DeliveryState.DELIVERED, delivered_at=now, **common)
            Subscription.objects.filter(
                pk=delivery.subscription_id, failing_since__isnull=False
            ).update(failing_since=None)
        return DeliveryState.DELIVERED
    give_up_at = delivery.created_at + timedelta(hours=settings.HOOKS_GIVE_UP_HOURS)
    if now >= give_up_at:
        state, next_at = DeliveryState.FAILED, now
    else:
        state, next_at = (
            DeliveryState.RETRYING,
            min(now + retry_delay(delivery.attempts), give_up_at),
        )
    with transaction.atomic():
        mine.update(state=state, next_attempt_at=next_at, **common)
        _subscription_failed(delivery.subscription_id, now)
    logger.warning(
        "Webhook %s to subscription %s failed (%s); %s",
        delivery.event_id,
        delivery.subscription_id,
        response.error or response.code,
        "gave up" if state == DeliveryState.FAILED else f"retry at {next_at:%H:%M:%S}",
    )
    return state


def _subscription_failed(subscription_id: int, now: datetime) -> None:
    """Mark when it started failing; disable it, and tell its owner, after a day of it."""
    Subscription.objects.filter(pk=subscription_id, failing_since__isnull=True).update(
        failing_since=now
    )
    since = now - timedelta(hours=settings.HOOKS_DISABLE_AFTER_HOURS)
    disabled = Subscription.objects.filter(
        pk=subscription_id, is_active=True, failing_since__lte=since
    ).update(
        is_active=False,
        disabled_at=now,
        disabled_reason=f"Every delivery failed for {settings.HOOKS_DISABLE_AFTER_HOURS} hours.",
    )
    if disabled:
        transaction.on_commit(lambda: _tell_owner(subscription_id))


def _tell_owner(subscription_id: int) -> None:
    """Email the owner that their subscription was disabled (as the digests do)."""
    subscription = Subscription.objects.select_related("owner").get(pk=subscription_id)
    owner = subscription.owner
    if not owner.email:
        return
    link = settings.CLEARED_SITE_URL + subscription.get_absolute_url()
    lines = [
        f"Cleared stopped sending webhooks to {subscription.url}:",
        subscription.disabled_reason,
        "",
        "Fix the receiver, then enable the subscription again; its delivery log",
        f"shows each attempt and offers Resend: {link}",
    ]
    try:
        EmailMessage(
            "Cleared: a webhook subscription was disabled", "\n".join(lines), to=[owner.email]
        ).send()
    except Exception as exc:  # the page says it too; mail is best effort
        logger.warning("Could not tell %s their subscription was disabled: %s", owner, exc)


def deliveries_run(*, now: datetime | None = None, limit: int = RUN_BATCH) -> int:
    """Beat's pick-up: send what is due or retrying, and what a killed worker held."""
    now = now or timezone.now()
    ids = list(
        Delivery.objects.filter(_claimable(now), subscription__is_active=True)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in ids if delivery_send(delivery_id=pk, now=now) == DeliveryState.DELIVERED)
