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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from hooks.formats import body_for
from hooks.models import WAITING, Delivery, DeliveryState, Subscription, random_letters
from hooks.targets import TargetRefused, check_target

logger = logging.getLogger(__name__)

RUN_BATCH = 500
BATCH = 20
RESPONSE_KEEP = 2000


def _claimable(now: datetime) -> Q:
    """Waiting and due, or sent by a worker whose lease ran out (killed mid-send)."""
    return Q(state__in=WAITING, next_attempt_at__lte=now) | Q(
        state=DeliveryState.SENDING, claimed_until__lte=now
    )


def deliveries_claim(
    *, now: datetime | None = None, ids: list[int] | None = None, limit: int = BATCH
) -> list[Delivery]:
    """Take up to ``limit`` due deliveries for this worker, oldest first.

    An ``UPDATE … WHERE`` on the states it expects, stamped with this claim's
    own token, so of two workers handed the same rows each row goes to exactly
    one; on PostgreSQL the candidates are picked ``FOR UPDATE SKIP LOCKED``, so
    two workers take two different batches instead of racing for one.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.HOOKS_LEASE_SECONDS)
    token = random_letters(16)
    active = Subscription.objects.filter(is_active=True).values_list("pk", flat=True)
    with transaction.atomic():
        due = Delivery.objects.filter(_claimable(now), subscription_id__in=list(active))
        if ids is not None:
            due = due.filter(pk__in=ids)
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        picked = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
        if not picked:
            return []
        Delivery.objects.filter(_claimable(now), pk__in=picked).order_by().update(
            state=DeliveryState.SENDING,
            claimed_until=now + lease,
            claim=token,
            attempts=F("attempts") + 1,
        )
    mine = Delivery.objects.filter(claim=token, state=DeliveryState.SENDING)
    return list(mine.select_related("event", "subscription").order_by("pk"))


def delivery_claim(*, delivery_id: int, now: datetime | None = None) -> Delivery | None:
    """Take one delivery (see ``deliveries_claim``); None if another worker has it."""
    claimed = deliveries_claim(now=now, ids=[delivery_id], limit=1)
    return claimed[0] if claimed else None


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


def _attempt(delivery: Delivery) -> tuple[str, Response]:
    """Sign and POST one claimed delivery (no database: runs in the send threads)."""
    subscription = delivery.subscription
    body = body_for(delivery.event, subscription.format)
    headers = signed_headers(
        secret=subscription.secret, msg_id=delivery.event_id, body=body, at=timezone.now()
    )
    return body, _post(subscription.url, body, headers)


def deliveries_send(
    *, now: datetime | None = None, ids: list[int] | None = None, limit: int = BATCH
) -> list[str]:
    """Claim a batch, send it (HOOKS_SEND_THREADS at once: one slow receiver does
    not hold up the rest), record each outcome; returns the states reached."""
    claimed = deliveries_claim(now=now, ids=ids, limit=limit)
    if not claimed:
        return []
    with ThreadPoolExecutor(max_workers=min(settings.HOOKS_SEND_THREADS, len(claimed))) as pool:
        outcomes = list(pool.map(_attempt, claimed))
    done = timezone.now()
    with transaction.atomic():  # one commit for the batch
        return [
            _record(delivery, body, response, done)
            for delivery, (body, response) in zip(claimed, outcomes, strict=True)
        ]


def delivery_send(*, delivery_id: int, now: datetime | None = None) -> str:
    """Claim one delivery and send it; returns its state afterwards ("" if not claimed)."""
    states = deliveries_send(now=now, ids=[delivery_id], limit=1)
    return states[0] if states else ""


def _record(delivery: Delivery, body: str, response: Response, now: datetime) -> str:
    """Write the attempt's outcome, if this worker still holds the claim."""
    mine = Delivery.objects.filter(
        pk=delivery.pk, state=DeliveryState.SENDING, claim=delivery.claim
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
    """Send what is due or retrying, and what a killed worker held, batch after
    batch (up to ``limit``); returns how many were delivered. Beat's pick-up,
    and what each queued ``hooks.deliver`` does: a burst of events queued one
    by one is sent in batches by whichever task comes first."""
    delivered = sent = 0
    while sent < limit:
        states = deliveries_send(now=now, limit=min(BATCH, limit - sent))
        sent += len(states)
        delivered += states.count(DeliveryState.DELIVERED)
        if len(states) < BATCH:
            break
    return delivered
