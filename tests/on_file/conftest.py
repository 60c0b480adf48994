"""The card on file against a real localstripe (the foundation's, tests/online/conftest.py)."""

import json
import urllib.error
import urllib.request

import pytest

from config.celery import app as celery_app
from online import on_file, processor
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from tests.factories import CustomerFactory, DealFactory
from tests.online.conftest import _processor, localstripe  # noqa: F401 - fixtures

# The foundation's localstripe (one per session) and its settings, autouse here too.
PUBLISHABLE = "pk_test_cleared_tests"


@pytest.fixture
def eager_tasks():
    """Tasks queued after commit run at once, in process (the worker's code, no broker)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def on_file_deal(rep):
    """An On-file deal of 1,000.00 whose customer has an email, still Promised."""
    customer = CustomerFactory(owner=rep, email="pat@customer.example")
    return DealFactory(
        rep=rep,
        customer=customer,
        payment_option=PaymentOption.ON_FILE,
        deposit_required=True,
        stage=Stage.PROMISED,
    )


def _post(path: str, body: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 - local
        f"{processor.api_origin()}{path}", data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def confirm_setup(setup, number: str) -> dict:
    """What Stripe.js's confirmCardSetup does (publishable key + client secret); a card
    that asks for 3-D Secure is then confirmed again, as after the customer's yes."""
    setup.refresh_from_db()  # as the customer's page loads it
    found = on_file.setup_intent_for(setup)
    card = {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    key = {"key": PUBLISHABLE, "client_secret": found.client_secret}
    path = f"/v1/setup_intents/{found.id}/confirm"
    answer = _post(path, {**key, "payment_method_data": {"type": "card", "card": card}})
    if answer.get("status") == "requires_action":
        answer = _post(path, key)
    return answer


def authenticate(intent_id: str, success: bool = True) -> dict:
    """The customer's yes (or no) to their bank's 3-D Secure check, as Stripe.js sends it."""
    found = processor.payment_intent_retrieve(intent_id)
    return _post(
        f"/v1/payment_intents/{intent_id}/_authenticate",
        {"key": PUBLISHABLE, "client_secret": found.client_secret, "success": success},
    )
