"""The customer's pay page: ``/online/pay/<link token>/<invoice id>/``.

No login: the customer's signed link (receivables/links.py) is the authority, as
for the link page, with its rate limit and its bare 404 for a forged, revoked or
expired token or an invoice the link does not cover. No cookie of Cleared's, no
cache, no referrer. The card is typed into the processor's own field (Stripe
Elements, loaded from ``processor.js_url()``); Cleared never sees the number.

Loading the page finds (or makes) the invoice's one PaymentIntent, so a second
load meets the first try. "Pay" first tells Cleared (``pay_start``: a pending
payment at once), then Stripe.js confirms the card; the processor's webhook
clears or bounces the payment.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.csp import CSP
from django.views.decorators.http import require_GET, require_POST

from billing.models import Invoice
from billing.services import BillingError
from online import processor, services
from receivables import links
from receivables.link_views import link_gone, link_limited, public_page


def processor_csp() -> dict:
    """The site's policy plus the processor's script, frames and API: for pay pages only."""
    policy = {name: list(values) for name, values in settings.SECURE_CSP.items()}
    script = processor.js_url().split("/js.stripe.com/")[0]
    if not processor.test_mode():
        script = "https://js.stripe.com"
    policy["script-src"] = [*policy["script-src"], script]
    policy["connect-src"] = [CSP.SELF, processor.api_origin()]
    policy["frame-src"] = (
        [script] if processor.test_mode() else ["https://js.stripe.com", "https://hooks.stripe.com"]
    )
    return policy


def _with_processor(response: HttpResponse) -> HttpResponse:
    response._csp_config = processor_csp()
    return response


def _invoice_of(request: HttpRequest, token: str, invoice_id: int):
    """(link, invoice) the token lets the customer pay, or a response refusing it."""
    if limited := link_limited(request, token):
        return None, limited
    link = links.link_for_token(token)
    if link is None or (link.invoice_id is not None and link.invoice_id != invoice_id):
        return None, link_gone(request)
    invoice = (
        Invoice.objects.filter(
            pk=invoice_id, deal__in=links.link_deals(link), deal__customer_id=link.customer_id
        )
        .select_related("deal", "deal__rep", "deal__customer")
        .first()
    )
    if invoice is None:
        return None, link_gone(request)
    return (link, invoice), None


@public_page
@require_GET
def pay(request: HttpRequest, token: str, invoice_id: int) -> HttpResponse:
    found_link, refused = _invoice_of(request, token, invoice_id)
    if refused:
        return refused
    link, invoice = found_link
    context = {
        "link": link,
        "invoice": invoice,
        "test_mode": processor.test_mode(),
        "back": links.customer_link_path(link),
        "contact": invoice.deal.rep,
    }
    try:
        intent = services.intent_for_link(invoice)
        found = processor.payment_intent_retrieve(intent.processor_id) if intent else None
    except processor.ProcessorError as exc:
        context.update(state="unavailable", problem=str(exc))
        return _with_processor(render(request, "online/pay.html", context, status=503))
    if intent is None:
        context["state"] = "nothing"
        return _with_processor(render(request, "online/pay.html", context))
    error = found.last_payment_error
    state = services.pay_state(invoice, found)
    context.update(
        intent=intent,
        state=state,
        declined=(error.message if error and found.status == "requires_payment_method" else ""),
        client_secret=found.client_secret,
        publishable_key=processor.publishable_key(),
        js_url=processor.js_url(),
        start_url=reverse("online:pay_start", args=[token, invoice.pk]),
    )
    return _with_processor(render(request, "online/pay.html", context))


@public_page
@require_POST
def pay_start(request: HttpRequest, token: str, invoice_id: int) -> JsonResponse:
    """The customer pressed Pay: the pending payment, recorded before the card is tried.

    A try the processor already answered (declined) is applied first, so the
    retry records a fresh pending payment; a double click records one.
    """
    found_link, refused = _invoice_of(request, token, invoice_id)
    if refused:
        return JsonResponse({"error": "This link does not work."}, status=refused.status_code)
    _, invoice = found_link
    try:
        intent = services.intent_for_link(invoice)
        if intent is None:
            return JsonResponse({"error": "Nothing is left to pay on this invoice."}, status=409)
        found = processor.payment_intent_retrieve(intent.processor_id)
        if found.status in ("succeeded", "processing"):
            return JsonResponse({"error": "This invoice is paid already."}, status=409)
        services.intent_sync(intent, found)
        payment = services.attempt_record(intent, found)
    except (processor.ProcessorError, BillingError) as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    return JsonResponse({"payment": payment.pk, "amount": str(payment.amount)})
