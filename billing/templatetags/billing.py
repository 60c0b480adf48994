"""The billing panels other apps' pages include: the deal's money, the customer's history."""

from django import template
from django.conf import settings

from billing import selectors

register = template.Library()


@register.simple_tag
def deal_money(deal):
    """``{% deal_money deal as money %}``: everything the deal's money panel shows."""
    return selectors.deal_money(deal)


@register.simple_tag
def customer_money(customer):
    """``{% customer_money customer as history %}``: the standing's facts and the exceptions."""
    return {
        "history": selectors.customer_payment_history(customer),
        "exceptions": selectors.customer_exceptions(customer),
        "window": settings.CLEARED_BOUNCE_WINDOW_DAYS,
    }


@register.filter
def percent(rate) -> str:
    """A rate as a percentage: 0.1250 → 12.5%."""
    return f"{(rate * 100).normalize():f}%"


@register.filter
def can_clear(user) -> bool:
    return user.is_manager or user.is_superuser
