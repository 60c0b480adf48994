"""The patched localstripe (online/localstripe_server.py) behaves as Stripe documents,
checked through the processor module (the ``stripe`` library): the calls the pay page
and the card on file make."""

import json
import urllib.request
from decimal import Decimal

import pytest

from online import processor

pytestmark = pytest.mark.django_db


def _browser(path: str, body: dict) -> dict:
    """A call as Stripe.js makes it: the publishable key, no secret key."""
    data = json.dumps({"key": "pk_test_cleared_tests", **body}).encode()
    url = f"{processor.api_origin()}{path}"
    request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 - local
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def _card(number: str) -> dict:
    return {
        "type": "card",
        "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    }


def _intent(customer, amount="25.10"):
    return processor.payment_intent_create(
        amount=Decimal(amount),
        customer_id=processor.customer_for(customer),
        metadata=processor.Metadata(deal_id=1, purpose="test"),
        idempotency_key=f"test-{amount}",
        description="INV-00001",
    )


def test_the_browser_confirms_with_the_card_and_3d_secure_cards_still_ask(customer):
    intent = _intent(customer)
    assert (intent.amount, intent.description) == (2510, "INV-00001")
    paid = _browser(
        f"/v1/payment_intents/{intent.id}/confirm",
        {"client_secret": intent.client_secret, "payment_method_data": _card("4242424242424242")},
    )
    assert paid["status"] == "succeeded"
    secure = _intent(customer, "9.99")
    asked = _browser(
        f"/v1/payment_intents/{secure.id}/confirm",
        {"client_secret": secure.client_secret, "payment_method_data": _card("4000002500003155")},
    )
    assert asked["status"] == "requires_action"


def test_the_declined_test_card_is_declined_on_charge_and_a_wrong_secret_refused(customer):
    intent = _intent(customer)
    refused = _browser(
        f"/v1/payment_intents/{intent.id}/confirm",
        {"client_secret": "pi_wrong_secret_x", "payment_method_data": _card("4242424242424242")},
    )
    assert "error" in refused
    declined = _browser(
        f"/v1/payment_intents/{intent.id}/confirm",
        {"client_secret": intent.client_secret, "payment_method_data": _card("4000000000000002")},
    )
    assert (declined["error"]["type"], declined["error"]["code"]) == ("card_error", "card_declined")
    assert declined["error"]["payment_intent"]["status"] == "requires_payment_method"
    found = processor.payment_intent_retrieve(intent.id)
    assert found.last_payment_error.message == "Your card was declined."


def test_a_card_set_up_on_file_is_charged_off_session_and_refunded(customer):
    cus = processor.customer_for(customer)
    assert processor.customer_for(customer) == cus  # made once
    setup = processor.setup_intent_create(
        customer_id=cus,
        metadata=processor.Metadata(deal_id=1, purpose="test"),
        idempotency_key="s1",
    )
    done = _browser(
        f"/v1/setup_intents/{setup.id}/confirm",
        {
            "client_secret": setup.client_secret,
            "use_stripe_sdk": True,
            "payment_method_data": _card("4242424242424242"),
        },
    )
    assert done["status"] == "succeeded"
    method = processor.payment_method_retrieve(done["payment_method"])
    assert (method.card.last4, method.card.brand) == ("4242", "visa")
    charged = processor.charge_off_session(
        amount=Decimal("120.00"),
        customer_id=cus,
        payment_method_id=method.id,
        metadata=processor.Metadata(deal_id=1, purpose="test"),
        idempotency_key="c1",
    )
    assert (charged.status, charged.amount) == ("succeeded", 12000)
    refund = processor.refund_create(
        intent_id=charged.id, idempotency_key="r1", amount=Decimal("20.00")
    )
    assert refund.amount == 2000


def test_an_off_session_decline_raises_card_declined_with_its_intent(customer):
    cus = processor.customer_for(customer)
    setup = processor.setup_intent_create(
        customer_id=cus,
        metadata=processor.Metadata(deal_id=1, purpose="test"),
        idempotency_key="s2",
    )
    done = _browser(
        f"/v1/setup_intents/{setup.id}/confirm",
        {
            "client_secret": setup.client_secret,
            "use_stripe_sdk": True,
            "payment_method_data": _card("4000000000000341"),
        },
    )
    with pytest.raises(processor.CardDeclined) as declined:
        processor.charge_off_session(
            amount=Decimal("50.00"),
            customer_id=cus,
            payment_method_id=done["payment_method"],
            metadata=processor.Metadata(deal_id=1, purpose="test"),
            idempotency_key="c2",
        )
    assert declined.value.code == "card_declined"
