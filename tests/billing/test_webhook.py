"""The payment processor's webhook: signature, freshness, shape, and applying an event once."""

import json
import time

import pytest
from django.test import Client

from billing.models import PaymentEvent, PaymentStatus, WebhookEvent
from billing.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from pipeline.models import Deal
from pipeline.stages import Stage
from tests.billing.money import record

pytestmark = pytest.mark.django_db

URL = "/billing/webhooks/payments/"
SECRET = "test-webhook-secret"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.CLEARED_WEBHOOK_SECRET = SECRET
    settings.CLEARED_WEBHOOK_TOLERANCE_SECONDS = 300


@pytest.fixture
def payment(delivered_deal, rep):
    return record(delivered_deal, rep, "1000.00", kind="final", method="card")


def _event(payment, kind="payment.cleared", event_id="evt_1", **data):
    return {"id": event_id, "type": kind, "data": {"payment_id": payment.pk, **data}}


def _post(body, *, timestamp=None, secret=SECRET, signature=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature if signature is not None else sign(raw, timestamp, secret),
    }
    # No login, no CSRF token: a fresh client with CSRF checks on, like the processor.
    return Client(enforce_csrf_checks=True).post(
        URL, raw, content_type="application/json", headers=headers
    )


def test_a_signed_cleared_event_clears_the_payment_and_moves_the_deal(payment):
    response = _post(_event(payment))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "applied"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLEARED
    event = payment.events.first()
    assert (event.actor, event.source) == (None, "webhook")
    assert Deal.objects.get(pk=payment.deal_id).stage == Stage.PAYMENT_CLEARED


def test_the_same_event_delivered_twice_is_applied_once(payment):
    assert _post(_event(payment)).json()["status"] == "applied"
    second = _post(_event(payment))
    assert second.status_code == 200 and second.json()["status"] == "duplicate"
    assert payment.events.filter(to_status=PaymentStatus.CLEARED).count() == 1
    assert WebhookEvent.objects.count() == 1


def test_a_bounce_event_carries_its_reason_to_the_ledger(payment):
    _post(_event(payment))
    _post(_event(payment, "payment.bounced", "evt_2", reason="R01 insufficient funds"))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.BOUNCED
    assert payment.events.first().reason == "R01 insufficient funds"
    assert Deal.objects.get(pk=payment.deal_id).stage == Stage.DELIVERED


def test_a_valid_event_the_ledger_refuses_is_recorded_as_ignored(payment, manager):
    from tests.billing.money import clear

    clear(payment, manager)  # a manager cleared the check before the processor said so
    response = _post(_event(payment))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert "already cleared" in response.json()["detail"]
    assert WebhookEvent.objects.get().outcome.startswith("ignored")


@pytest.mark.parametrize(
    "tamper",
    [
        {"secret": "not-the-secret"},
        {"signature": "sha256=" + "0" * 64},
        {"signature": ""},
    ],
)
def test_a_wrong_signature_is_a_400_and_changes_nothing(payment, tamper):
    response = _post(_event(payment), **tamper)
    assert response.status_code == 400
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert not WebhookEvent.objects.exists()


def test_a_body_changed_after_signing_is_refused(payment):
    timestamp = int(time.time())
    signed = sign(json.dumps(_event(payment)).encode(), timestamp, SECRET)
    forged = _event(payment, "payment.charged_back")
    assert _post(forged, timestamp=timestamp, signature=signed).status_code == 400


# A few seconds past the 300 s tolerance: the whole-second timestamp and the
# time the request takes must not carry a "just past" case back inside it.
@pytest.mark.parametrize("age", [305, -305, 3600])
def test_a_stale_or_future_timestamp_is_a_400(payment, age):
    response = _post(_event(payment), timestamp=int(time.time()) - age)
    assert response.status_code == 400
    assert "Stale" in response.json()["error"]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING


def test_a_replayed_old_request_is_refused_even_with_its_valid_signature(payment):
    old = int(time.time()) - 600
    assert _post(_event(payment), timestamp=old).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        {"type": "payment.cleared", "data": {"payment_id": 1}},
        {"id": "evt", "type": "payment.refunded", "data": {"payment_id": 1}},
        {"id": "evt", "type": "payment.cleared", "data": {"payment_id": "1"}},
        {"id": "evt", "type": "payment.cleared"},
        {"id": "evt", "type": "payment.bounced", "data": {"payment_id": 1, "reason": 5}},
    ],
)
def test_a_malformed_body_is_a_400_and_changes_nothing(payment, body):
    response = _post(body)
    assert response.status_code == 400
    assert PaymentEvent.objects.count() == 1
    assert not WebhookEvent.objects.exists()


def test_an_unknown_payment_is_a_400(payment):
    body = {"id": "evt_x", "type": "payment.cleared", "data": {"payment_id": payment.pk + 999}}
    assert _post(body).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_without_a_configured_secret_every_event_is_refused(payment, settings):
    settings.CLEARED_WEBHOOK_SECRET = ""
    assert _post(_event(payment)).status_code == 503


def test_the_webhook_answers_only_post():
    assert Client().get(URL).status_code == 405


def test_a_card_number_in_a_webhook_reason_is_masked_in_the_ledger_and_the_payload(payment):
    response = _post(
        _event(payment, "payment.bounced", "evt_card", reason="R01 card 4111.1111.1111.1111 12/28")
    )
    assert response.status_code == 200, response.content
    stored = WebhookEvent.objects.get(event_id="evt_card")
    assert stored.payload["data"]["reason"] == "R01 card •••• 1111 12/28"
    assert payment.events.get(to_status=PaymentStatus.BOUNCED).reason == (
        "R01 card •••• 1111 12/28"
    )
    assert "1111.1111" not in str(WebhookEvent.objects.values_list("payload", flat=True).get())
