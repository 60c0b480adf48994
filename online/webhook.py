"""Stripe's webhook: ``POST /online/stripe/webhook/``, signed by Stripe (README, "Paying online").

The ``Stripe-Signature`` header is checked by the library against
``STRIPE_WEBHOOK_SECRET`` (``online.processor.event_construct``): a missing,
wrong or stale signature, or a body that is not an event, is a 400 and changes
nothing. A valid event is applied once by its id (``online.services.event_apply``,
recorded on billing's ``WebhookEvent`` with every string masked and no client
secret). A valid event Cleared does not act on is a 200 "ignored", so Stripe stops
sending it. Never a 500: whatever the body holds, the answer is 200 or 400.
"""

import json

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.services import BillingError
from billing.webhooks import BadEvent, check_storable
from online import processor, services


def _event(body: bytes, signature: str | None) -> dict:
    event = processor.event_construct(body, signature)
    data = json.loads(body)  # verified JSON: the stored copy is exactly what Stripe sent
    if not isinstance(data, dict) or data.get("id") != event.id:
        raise BadEvent("The body is not a Stripe event.")
    check_storable(data)
    return data


@csrf_exempt  # signed by Stripe instead: no browser session, no CSRF token
@login_not_required
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    try:
        event = _event(request.body, request.headers.get("Stripe-Signature"))
        outcome = services.event_apply(event)
    except processor.BadSignature as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except (BadEvent, BillingError, KeyError, TypeError, ValueError) as exc:
        return JsonResponse({"error": f"Not an event Cleared can apply: {exc}"}, status=400)
    except processor.ProcessorError as exc:
        # Stripe could not be asked about the event: it retries later.
        return JsonResponse({"error": str(exc)}, status=503)
    return JsonResponse({"status": outcome.status, "detail": outcome.detail})
