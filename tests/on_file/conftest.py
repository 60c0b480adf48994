"""The card on file against a real localstripe (online/localstripe_server.py)."""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from config.celery import app as celery_app
from online import on_file, processor
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from tests.factories import CustomerFactory, DealFactory

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whsec_cleared_on_file_tests"
PUBLISHABLE = "pk_test_cleared_on_file"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    port = _free_port()
    folder = tmp_path_factory.mktemp("localstripe")
    with open(folder / "server.log", "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "online.localstripe_server", "--port", str(port),
             "--webhook-secret", WEBHOOK_SECRET, "--state-file", str(folder / "state.pickle")],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{base}/js.stripe.com/v3/", timeout=1)  # noqa: S310 - local
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("localstripe did not start") from None
            time.sleep(0.1)
    yield base
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(autouse=True)
def _processor(settings, localstripe):
    settings.STRIPE_TEST_MODE = True
    settings.STRIPE_SECRET_KEY = "sk_test_cleared_on_file"
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe
    settings.STRIPE_JS_URL = f"{localstripe}/js.stripe.com/v3/"


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
