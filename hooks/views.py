"""Webhook subscriptions and their delivery log: check access, call one service, render."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from hooks import services
from hooks.forms import SubscriptionForm
from hooks.models import Delivery
from pipeline.access import require_manager

LOG_PAGE = 25
# The new subscription's secret, from the POST that made it to the one page that
# shows it (popped there: shown once), as the recovery codes are (pipeline.account_views).
NEW_SECRET_SESSION_KEY = "hooks_new_secret"  # noqa: S105 - a session key, not a secret


def subscription_list(request: HttpRequest) -> HttpResponse:
    require_manager(request.user, "Webhooks are for managers.")
    subscriptions = services.subscriptions_visible_to(request.user).select_related("owner")
    return render(
        request,
        "hooks/subscription_list.html",
        {"subscriptions": subscriptions, "form": SubscriptionForm()},
    )


@require_POST
def subscription_new(request: HttpRequest) -> HttpResponse:
    require_manager(request.user, "Webhooks are for managers.")
    form = SubscriptionForm(request.POST)
    if form.is_valid():
        try:
            subscription = services.subscription_create(owner=request.user, **form.cleaned_data)
        except services.HooksError as refused:
            form.add_error(refused.field, str(refused))
        else:
            request.session[NEW_SECRET_SESSION_KEY] = [subscription.pk, subscription.secret]
            return redirect(subscription)
    subscriptions = services.subscriptions_visible_to(request.user).select_related("owner")
    return render(
        request,
        "hooks/subscription_list.html",
        {"subscriptions": subscriptions, "form": form},
        status=400,
    )


@never_cache
def subscription_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The subscription and its delivery log, newest first; just made, its secret (once)."""
    subscription = services.get_subscription_for(request.user, pk)
    made = request.session.pop(NEW_SECRET_SESSION_KEY, None)
    if made and made[0] == subscription.pk:
        return render(
            request,
            "hooks/subscription_created.html",
            {"subscription": subscription, "secret": made[1]},
        )
    deliveries = subscription.deliveries.select_related("event").order_by("-created_at", "-id")
    page = Paginator(deliveries, LOG_PAGE).get_page(request.GET.get("page"))
    return render(
        request, "hooks/subscription_detail.html", {"subscription": subscription, "page": page}
    )


@require_POST
def subscription_enable(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = services.get_subscription_for(request.user, pk)
    services.subscription_enable(subscription=subscription)
    messages.success(request, "Enabled: events are sent again.")
    return redirect(subscription)


@require_POST
def subscription_disable(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = services.get_subscription_for(request.user, pk)
    services.subscription_disable(subscription=subscription, actor=request.user)
    messages.success(request, "Disabled: nothing is sent until you enable it.")
    return redirect(subscription)


@require_POST
def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = services.get_subscription_for(request.user, pk)
    services.subscription_delete(subscription=subscription)
    messages.success(request, f"Deleted the subscription to {subscription.url}.")
    return redirect("hooks:subscription_list")


@require_POST
def subscription_test(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = services.get_subscription_for(request.user, pk)
    try:
        event = services.subscription_send_test(subscription=subscription, actor=request.user)
    except services.HooksError as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Test event {event.id} queued: it shows in the log below.")
    return redirect(subscription)


@require_POST
def delivery_resend(request: HttpRequest, pk: int, delivery_pk: int) -> HttpResponse:
    subscription = services.get_subscription_for(request.user, pk)
    delivery = get_object_or_404(Delivery, pk=delivery_pk, subscription=subscription)
    services.delivery_resend(delivery=delivery)
    messages.success(request, f"{delivery.event_id} will be sent again in a moment.")
    return redirect(subscription)
