"""The deal page's card-on-file panel (templates/online/_deal_on_file.html)."""

from dataclasses import dataclass

from django import template

from online import on_file
from online.on_file_models import OnFileCharge, OnFileSetup
from pipeline.terms import PaymentOption

register = template.Library()


@dataclass
class OnFilePanel:
    method: object
    setups: list
    charges: list
    charge_refusal: str | None
    left: object


@register.simple_tag
def deal_on_file(deal) -> OnFilePanel | None:
    """``{% deal_on_file deal as on_file %}``: the card the customer put on file, the
    links sent, the charges and why the card can't be charged now; None off On file."""
    if deal.payment_option != PaymentOption.ON_FILE:
        return None
    setups = list(OnFileSetup.objects.filter(deal=deal).select_related("created_by")[:3])
    charges = list(
        OnFileCharge.objects.filter(deal=deal).select_related("payment", "method", "charged_by")[:5]
    )
    return OnFilePanel(
        method=on_file.processor_method(deal),
        setups=setups,
        charges=[(charge, on_file.charge_describe(charge)) for charge in charges],
        charge_refusal=on_file.charge_refusal(deal),
        left=on_file.left_to_charge(deal),
    )
