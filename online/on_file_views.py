"""The card on file: the staff's buttons (send the link, charge the card, the team's
auto-charge) and the customer's two pages (put a card on file; authenticate a charge).

The customer's pages need no login: the signed token in the URL is the
credential (as for the customer's link), every refusal is the same bare 404,
and the card is typed into the processor's own field (Stripe Elements), never
into Cleared.
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.services import BillingError
from online import on_file, processor
from online.on_file_models import TeamCharging
from online.views import processor_csp
from pipeline.access import get_deal_for, require_manager, require_seller
from receivables.link_views import link_gone, public_page

# --- the staff's buttons -------------------------------------------


@require_POST
def card_link_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Email the customer the link to put their card on file (rep or manager)."""
    require_seller(request.user)
    deal = get_deal_for(request.user, pk)
    try:
        setup = on_file.on_file_link_send(deal_id=deal.pk, actor=request.user)
    except BillingError as refused:
        messages.warning(request, str(refused))
    else:
        messages.success(
            request,
            f"Sent {setup.sent_to} a link to put their card on file. "
            "Its brand and last 4 show here once they have.",
        )
    return redirect(deal)


@require_POST
def card_charge(request: HttpRequest, pk: int) -> HttpResponse:
    """Charge the card on file for what is left to pay (rep or manager, once delivered)."""
    require_seller(request.user)
    deal = get_deal_for(request.user, pk)
    try:
        charge = on_file.on_file_charge(deal_id=deal.pk, actor=request.user)
    except BillingError as refused:
        messages.warning(request, str(refused))
    else:
        messages.success(request, f"Card on file charged — {on_file.charge_describe(charge)}")
    return redirect(deal)


@require_http_methods(["GET", "POST"])
def team_charging(request: HttpRequest) -> HttpResponse:
    """A manager turns "charge the card on file on delivery" on or off for their team."""
    require_manager(request.user)
    if request.method == "POST":
        on = request.POST.get("charge_on_delivery") == "on"
        on_file.team_charging_set(manager=request.user, on=on)
        messages.success(
            request,
            "Cards on file are now charged on delivery."
            if on
            else "Cards on file are charged only when someone presses Charge.",
        )
        return redirect("on_file:team_charging")
    setting = TeamCharging.objects.filter(manager=request.user).first()
    return render(
        request,
        "online/team_charging.html",
        {"on": bool(setting and setting.charge_on_delivery), "setting": setting},
    )


# --- the customer's pages -------------------------------------------


def _page(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    response = render(request, template, {"test_mode": processor.test_mode(), **context})
    response._csp_config = processor_csp()
    return response


def _confirming(state: str, fetch) -> dict:
    """What a page that confirms with Stripe.js needs: the intent's client secret and the
    processor's key and script; or why the processor can't be reached."""
    try:
        found = fetch()
    except processor.ProcessorError as exc:
        return {"state": "unavailable", "problem": str(exc)}
    return {
        "state": state,
        "client_secret": found.client_secret,
        "publishable_key": processor.publishable_key(),
        "js_url": processor.js_url(),
    }


@public_page
@require_GET
def card_setup(request: HttpRequest, token: str) -> HttpResponse:
    """The customer puts their card on file (a SetupIntent confirmed by Stripe.js)."""
    setup = on_file.setup_for_token(token)
    if setup is None:
        return link_gone(request)
    context = {"setup": setup, "deal": setup.deal, "state": "done" if setup.completed_at else ""}
    if not setup.completed_at:
        context.update(_confirming("setup", lambda: on_file.setup_intent_for(setup)))
    return _page(request, "online/card_setup.html", context)


@public_page
@require_GET
def card_setup_done(request: HttpRequest, token: str) -> HttpResponse:
    """Back from the processor: keep the card's brand and last 4 (once)."""
    setup = on_file.setup_for_token(token)
    if setup is None or not setup.processor_id:
        return link_gone(request)
    try:
        method = on_file.on_file_setup_complete(setup_id=setup.pk)
    except (processor.ProcessorError, BillingError) as exc:
        context = {"state": "unavailable", "problem": str(exc)}
    else:
        context = {"state": "done" if method else "pending", "method": method}
    return _page(request, "online/card_setup.html", {"setup": setup, "deal": setup.deal, **context})


@public_page
@require_GET
def authenticate(request: HttpRequest, token: str) -> HttpResponse:
    """The customer confirms an off-session charge their bank asked them to authenticate."""
    charge = on_file.charge_for_token(token)
    if charge is None or charge.intent is None:
        return link_gone(request)
    context = {"charge": charge, "deal": charge.deal, "state": charge.payment.status}
    if charge.payment.status == "pending":
        intent_id = charge.intent.processor_id
        context.update(
            _confirming("authenticate", lambda: processor.payment_intent_retrieve(intent_id))
        )
    return _page(request, "online/authenticate.html", context)


@public_page
@require_GET
def authenticate_done(request: HttpRequest, token: str) -> HttpResponse:
    charge = on_file.charge_for_token(token)
    if charge is None or charge.intent is None:
        return link_gone(request)
    try:
        on_file.charge_after_authentication(charge)
    except processor.ProcessorError as exc:
        return _page(
            request,
            "online/authenticate.html",
            {"charge": charge, "deal": charge.deal, "state": "unavailable", "problem": str(exc)},
        )
    charge.payment.refresh_from_db()
    return _page(
        request,
        "online/authenticate.html",
        {"charge": charge, "deal": charge.deal, "state": charge.payment.status},
    )
