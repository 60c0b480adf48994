"""The payment processor's webhook: signed events that clear, bounce or charge back payments.

README.md, "Payment webhook", documents the format. A request is applied only
if its HMAC-SHA256 signature over ``"{timestamp}.{raw body}"`` matches the
shared secret and its timestamp is fresh; anything else is a 400 and changes
nothing. The same event id is applied once (``WebhookEvent.event_id`` is unique).
"""

import hashlib
import hmac
import json
import re
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import services
from billing.models import PaymentStatus

SIGNATURE_HEADER = "X-Cleared-Signature"
TIMESTAMP_HEADER = "X-Cleared-Timestamp"
EVENT_TYPES = {
    "payment.cleared": PaymentStatus.CLEARED,
    "payment.bounced": PaymentStatus.BOUNCED,
    "payment.charged_back": PaymentStatus.CHARGED_BACK,
}


# Unix seconds in ASCII digits: int() of a 5,000-digit header is an error, not a time.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# An event is three levels deep; anything much deeper is not from the processor.
MAX_DEPTH = 20


class BadEvent(Exception):
    """The request is not a valid, fresh, signed event: 400, nothing changes."""


def sign(body: bytes, timestamp: int | str, secret: str) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(body: bytes, timestamp: str, signature: str, secret: str, now: float) -> None:
    if not timestamp or not _TIMESTAMP.fullmatch(timestamp):
        raise BadEvent(f"Missing or malformed {TIMESTAMP_HEADER} header.")
    if abs(now - int(timestamp)) > settings.CLEARED_WEBHOOK_TOLERANCE_SECONDS:
        raise BadEvent("Stale timestamp: the event is too old (or from the future).")
    if not hmac.compare_digest(sign(body, timestamp, secret), signature or ""):
        raise BadEvent("Wrong signature.")


def _refuse_constant(name: str):
    raise BadEvent(f"The body is not JSON ({name} is not a number).")


def check_storable(value) -> None:
    """The event is kept as JSON in PostgreSQL: no deep nesting, no NUL in any text."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadEvent(f"The body is nested more than {MAX_DEPTH} levels deep.")
        if isinstance(item, str) and "\x00" in item:
            raise BadEvent("The body contains a NUL character.")
        if isinstance(item, dict):
            stack.extend((part, depth + 1) for pair in item.items() for part in pair)
        elif isinstance(item, list):
            stack.extend((part, depth + 1) for part in item)


def parse(body: bytes) -> dict:
    try:
        event = json.loads(body, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadEvent("The body is not JSON.") from None
    except RecursionError:
        raise BadEvent(f"The body is nested more than {MAX_DEPTH} levels deep.") from None
    if not isinstance(event, dict):
        raise BadEvent("The body must be a JSON object.")
    check_storable(event)
    event_id, kind, data = event.get("id"), event.get("type"), event.get("data")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 100:
        raise BadEvent('"id" must be a string of 1 to 100 characters.')
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise BadEvent(f'"type" must be one of {", ".join(EVENT_TYPES)}.')
    if not isinstance(data, dict) or type(data.get("payment_id")) is not int:
        raise BadEvent('"data.payment_id" must be the Cleared payment id (an integer).')
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise BadEvent('"data.reason" must be a string of at most 500 characters.')
    return {
        "event_id": event_id,
        "type": kind,
        "to_status": EVENT_TYPES[kind],
        "payment_id": data["payment_id"],
        "reason": reason,
        "payload": event,
    }


@csrf_exempt  # signed by the processor instead: no browser session, no CSRF token
@login_not_required
@require_POST
def payment_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.CLEARED_WEBHOOK_SECRET
    if not secret:
        return JsonResponse({"error": "The payment webhook is not configured."}, status=503)
    try:
        verify(
            request.body,
            request.headers.get(TIMESTAMP_HEADER, ""),
            request.headers.get(SIGNATURE_HEADER, ""),
            secret,
            time.time(),
        )
        event = parse(request.body)
        outcome = services.webhook_event_apply(**event)
    except (BadEvent, services.BillingError) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"status": outcome.status, "detail": outcome.detail})
