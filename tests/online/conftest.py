"""A real localstripe (patched: online/localstripe_server.py) for the paying-online tests.

One server per test session on a free port; every test in tests/online talks to
it through the ``stripe`` library (``online.processor``), and browser tests have
it send its webhooks to the live server (``stripe_webhooks``).
"""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from online import processor
from pipeline.stages import Stage
from receivables import links
from tests.factories import DealFactory, InvoiceFactory

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whsec_cleared_tests"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    """The base URL of a localstripe server running for this test session."""
    port = _free_port()
    log = tmp_path_factory.mktemp("localstripe") / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "online.localstripe_server", "--port", str(port),
             "--webhook-secret", WEBHOOK_SECRET],
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
                raise RuntimeError(f"localstripe did not start: {log.read_text()}") from None
            time.sleep(0.1)
    yield base
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(autouse=True)
def _processor(settings, localstripe):
    settings.STRIPE_TEST_MODE = True
    settings.STRIPE_SECRET_KEY = "sk_test_cleared_tests"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_cleared_tests"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe
    settings.STRIPE_JS_URL = f"{localstripe}/js.stripe.com/v3/"


def register_webhook(localstripe: str, url: str) -> None:
    """Have localstripe send its events to ``url`` (its ``/_config/webhooks`` API)."""
    body = json.dumps({"url": url, "secret": WEBHOOK_SECRET}).encode()
    request = urllib.request.Request(  # noqa: S310 - local
        f"{localstripe}/_config/webhooks/cleared", data=body, method="POST"
    )
    urllib.request.urlopen(request, timeout=5)  # noqa: S310 - local


def signed_post(client, event: dict, *, secret: str = WEBHOOK_SECRET, timestamp=None):
    """POST ``event`` to Cleared's Stripe webhook signed exactly as Stripe signs."""
    body = json.dumps(event).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    return client.post(
        "/online/stripe/webhook/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": processor.event_sign(body, secret, stamp)},
    )


def browser_confirm(intent, number: str = "4242424242424242") -> dict:
    """What Stripe.js does when the customer pays: confirm with the card (pk key + secret)."""
    found = processor.payment_intent_retrieve(intent.processor_id)
    body = json.dumps(
        {
            "key": "pk_test_cleared_tests",
            "client_secret": found.client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
            },
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - local
        f"{processor.api_origin()}/v1/payment_intents/{intent.processor_id}/confirm",
        data=body,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


@pytest.fixture
def delivered_invoice(rep, customer):
    """An invoice of 1,000.00 on a delivered deal (no deposit), with its customer link."""
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    invoice = InvoiceFactory(deal=deal)
    link = links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)
    invoice.token = links.customer_link_token(link)
    invoice.pay_url = f"/online/pay/{invoice.token}/{invoice.pk}/"
    return invoice
