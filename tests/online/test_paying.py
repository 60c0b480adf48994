"""Paying from the customer's link, against a real (patched) localstripe: the one
PaymentIntent per invoice, the pending payment at once, the processor's webhook
clearing, bouncing and charging back through billing's services, reconciliation."""

import datetime
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing.models import (
    CommissionEntry,
    EventSource,
    Payment,
    PaymentEvent,
    PaymentStatus,
    WebhookEvent,
)
from online import processor, services
from online.models import Intent, IntentPayment
from pipeline.stages import Stage
from receivables import links
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_scan
from tests.factories import DealFactory, InvoiceFactory, PaymentFactory
from tests.online.conftest import browser_confirm, signed_post

pytestmark = pytest.mark.django_db


def _event(kind: str, obj: dict) -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": kind,
        "data": {"object": obj},
    }


def _intent_event(intent, kind: str) -> dict:
    return _event(kind, processor.payment_intent_retrieve(intent.processor_id).to_dict())


def _open_and_start(client, invoice) -> tuple[Intent, Payment]:
    assert client.get(invoice.pay_url).status_code == 200
    started = client.post(f"{invoice.pay_url}start/")
    assert started.status_code == 200, started.content
    return Intent.objects.get(invoice=invoice), Payment.objects.get(pk=started.json()["payment"])


# --- money: Decimal <-> cents, exactly -------------------------------------------------


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2))
@hypothesis_settings(max_examples=300, deadline=None)
def test_amounts_go_to_cents_and_back_exactly(amount):
    cents = processor.to_cents(amount)
    assert isinstance(cents, int)
    assert cents == int(amount * 100)
    assert processor.from_cents(cents) == amount


def test_a_fraction_of_a_cent_is_refused():
    with pytest.raises(ValueError):
        processor.to_cents(Decimal("10.005"))
    assert processor.to_cents(Decimal("1000"), "jpy") == 1000


# --- the pay page ----------------------------------------------------------------------


def test_the_pay_page_asks_for_the_invoice_amount_in_exact_cents(delivered_invoice):
    client = Client()
    response = client.get(delivered_invoice.pay_url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Test payments — no real money moves" in page
    assert "Pay $1,000.00" in page
    assert response.cookies == {}
    intent = Intent.objects.get(invoice=delivered_invoice)
    found = processor.payment_intent_retrieve(intent.processor_id)
    assert (found.amount, found.currency) == (100000, "usd")
    assert found.metadata["cleared_invoice"] == str(delivered_invoice.pk)
    assert found.customer == delivered_invoice.deal.customer.processor_customer.processor_id
    # The processor's script, frame and API are allowed here, and only here.
    policy = response["Content-Security-Policy"]
    assert f"script-src 'self' {processor.api_origin()}" in policy
    assert f"frame-src {processor.api_origin()}" in policy
    assert f"connect-src 'self' {processor.api_origin()}" in policy


def test_paying_twice_is_impossible(delivered_invoice):
    client = Client()
    intent, payment = _open_and_start(client, delivered_invoice)
    assert client.get(delivered_invoice.pay_url).status_code == 200
    assert Intent.objects.filter(invoice=delivered_invoice).count() == 1
    assert browser_confirm(intent)["status"] == "succeeded"
    again = client.get(delivered_invoice.pay_url).content.decode()
    assert "went through" in again and "Pay $" not in again
    assert client.post(f"{delivered_invoice.pay_url}start/").status_code == 409
    assert Intent.objects.filter(invoice=delivered_invoice).count() == 1
    assert Payment.objects.filter(deal=delivered_invoice.deal).count() == 1


def test_a_double_click_records_one_pending_payment(delivered_invoice):
    client = Client()
    _, payment = _open_and_start(client, delivered_invoice)
    assert client.post(f"{delivered_invoice.pay_url}start/").json()["payment"] == payment.pk
    assert payment.status == PaymentStatus.PENDING
    assert (payment.method, payment.amount) == ("card", Decimal("1000.00"))
    first = PaymentEvent.objects.get(payment=payment)
    assert (first.source, first.actor) == (EventSource.WEBHOOK, None)


@pytest.mark.parametrize("where", ["token", "invoice"])
def test_a_forged_link_or_another_invoice_is_a_404(delivered_invoice, where, rep, customer):
    other = Intent.objects.none()
    if where == "token":
        token = delivered_invoice.token
        url = delivered_invoice.pay_url.replace(token, token[:-2] + "xx")
    else:
        url = f"/online/pay/{delivered_invoice.token}/{delivered_invoice.pk + 1000}/"
    assert Client().get(url).status_code == 404
    assert Client().post(f"{url}start/").status_code == 404
    assert not other.exists() and not Intent.objects.exists()


# --- the webhook -----------------------------------------------------------------------


def test_succeeded_clears_the_payment_and_moves_the_stage(delivered_invoice):
    intent, payment = _open_and_start(Client(), delivered_invoice)
    browser_confirm(intent)
    response = signed_post(Client(), _intent_event(intent, "payment_intent.succeeded"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "applied"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLEARED
    delivered_invoice.deal.refresh_from_db()
    assert delivered_invoice.deal.stage == Stage.PAYMENT_CLEARED
    assert CommissionEntry.objects.filter(payment=payment).exists()


def test_the_same_event_twice_changes_nothing(delivered_invoice):
    intent, payment = _open_and_start(Client(), delivered_invoice)
    browser_confirm(intent)
    event = _intent_event(intent, "payment_intent.succeeded")
    assert signed_post(Client(), event).json()["status"] == "applied"

    def counts():
        return [m.objects.count() for m in (PaymentEvent, CommissionEntry, Payment)]

    before = counts()
    second = signed_post(Client(), event)
    assert (second.status_code, second.json()["status"]) == (200, "duplicate")
    assert counts() == before
    assert WebhookEvent.objects.filter(event_id=event["id"]).count() == 1


def test_a_declined_card_bounces_the_payment_and_a_retry_does_not_double_charge(delivered_invoice):
    client = Client()
    intent, payment = _open_and_start(client, delivered_invoice)
    declined = browser_confirm(intent, "4000000000000002")
    assert declined["error"]["code"] == "card_declined"
    response = signed_post(Client(), _intent_event(intent, "payment_intent.payment_failed"))
    assert response.json()["status"] == "applied"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.BOUNCED
    bounce = PaymentEvent.objects.get(payment=payment, to_status=PaymentStatus.BOUNCED)
    assert bounce.reason == "Your card was declined."
    page = client.get(delivered_invoice.pay_url).content.decode()
    assert "Your last try was declined: Your card was declined." in page
    # The retry: the same PaymentIntent, a new pending payment, then success.
    retry = client.post(f"{delivered_invoice.pay_url}start/").json()["payment"]
    assert retry != payment.pk
    assert browser_confirm(intent)["status"] == "succeeded"
    signed_post(Client(), _intent_event(intent, "payment_intent.succeeded"))
    assert Payment.objects.get(pk=retry).status == PaymentStatus.CLEARED
    assert Intent.objects.count() == 1
    found = processor.payment_intent_retrieve(intent.processor_id)
    assert found.status == "succeeded"
    cleared = Payment.objects.filter(deal=delivered_invoice.deal, status=PaymentStatus.CLEARED)
    assert [p.amount for p in cleared] == [Decimal("1000.00")]


def test_a_dispute_charges_back_and_claws_the_commission_back(delivered_invoice):
    intent, payment = _open_and_start(Client(), delivered_invoice)
    browser_confirm(intent)
    signed_post(Client(), _intent_event(intent, "payment_intent.succeeded"))
    found = processor.payment_intent_retrieve(intent.processor_id)
    charge = found.latest_charge if isinstance(found.latest_charge, str) else found.latest_charge.id
    dispute = {
        "id": "dp_test1",
        "object": "dispute",
        "charge": charge,
        "payment_intent": intent.processor_id,
        "reason": "fraudulent",
        "amount": 100000,
    }
    response = signed_post(Client(), _event("charge.dispute.created", dispute))
    assert response.json()["status"] == "applied", response.content
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CHARGED_BACK
    entries = CommissionEntry.objects.filter(payment=payment).order_by("id")
    assert sum(e.amount for e in entries) == 0 and entries.count() == 2
    delivered_invoice.deal.refresh_from_db()
    assert delivered_invoice.deal.stage != Stage.PAYMENT_CLEARED


def test_a_refund_event_is_recorded_and_changes_no_payment(delivered_invoice):
    intent, payment = _open_and_start(Client(), delivered_invoice)
    charge = {
        "id": "ch_refunded1",
        "object": "charge",
        "payment_intent": intent.processor_id,
        "amount_refunded": 100000,
        "refunded": True,
    }
    response = signed_post(Client(), _event("charge.refunded", charge))
    assert (response.status_code, response.json()["status"]) == (200, "ignored")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING


def test_processing_keeps_the_payment_pending(delivered_invoice):
    intent, payment = _open_and_start(Client(), delivered_invoice)
    response = signed_post(Client(), _intent_event(intent, "payment_intent.processing"))
    assert response.json()["status"] == "applied"
    assert Payment.objects.get().status == PaymentStatus.PENDING


@pytest.mark.parametrize(
    "how",
    ["no signature", "wrong secret", "stale", "tampered"],
)
def test_a_bad_signature_is_a_400_and_changes_nothing(delivered_invoice, how):
    intent, payment = _open_and_start(Client(), delivered_invoice)
    browser_confirm(intent)
    event = _intent_event(intent, "payment_intent.succeeded")
    if how == "no signature":
        response = Client().post(
            "/online/stripe/webhook/", data=event, content_type="application/json"
        )
    elif how == "wrong secret":
        response = signed_post(Client(), event, secret="whsec_not_ours")
    elif how == "stale":
        response = signed_post(Client(), event, timestamp=int(timezone.now().timestamp()) - 3600)
    else:
        body = processor.event_sign(b"{}", "whsec_cleared_tests", int(timezone.now().timestamp()))
        response = Client().post(
            "/online/stripe/webhook/",
            data=event,
            content_type="application/json",
            headers={"Stripe-Signature": body},
        )
    assert response.status_code == 400
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"id": 3}',
        b'{"id": "evt_1", "type": "payment_intent.succeeded"}',
        b'{"id": "evt_2", "type": "payment_intent.succeeded", "data": {"object": []}}',
        b'{"id": "evt_3", "type": "payment_intent.succeeded",'
        b' "data": {"object": {"id": "pi\\u0000"}}}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_garbage_signed_or_not_is_a_400_never_a_500(body):
    client = Client(raise_request_exception=False)
    stamp = int(timezone.now().timestamp())
    signature = processor.event_sign(body, "whsec_cleared_tests", stamp)
    signed = client.post(
        "/online/stripe/webhook/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )
    assert signed.status_code == 400, signed.content
    unsigned = client.post("/online/stripe/webhook/", data=body, content_type="application/json")
    assert unsigned.status_code == 400


def test_a_signed_event_cleared_does_not_know_is_recorded_as_ignored():
    customer = {"id": "cus_x", "object": "customer"}
    response = signed_post(Client(), _event("customer.created", customer))
    assert (response.status_code, response.json()["status"]) == (200, "ignored")
    unknown = signed_post(Client(), _event("payment_intent.succeeded", {"id": "pi_notours"}))
    assert (unknown.status_code, unknown.json()["status"]) == (200, "ignored")


def test_the_stored_event_keeps_no_client_secret(delivered_invoice):
    intent, _ = _open_and_start(Client(), delivered_invoice)
    browser_confirm(intent)
    event = _intent_event(intent, "payment_intent.succeeded")
    assert "client_secret" in event["data"]["object"]
    signed_post(Client(), event)
    stored = WebhookEvent.objects.get(event_id=event["id"]).payload
    assert "client_secret" not in str(stored) and intent.processor_id in str(stored)


# --- reconciliation --------------------------------------------------------------------


def test_reconciliation_catches_a_payment_whose_webhook_never_arrived(delivered_invoice):
    intent, payment = _open_and_start(Client(), delivered_invoice)
    assert browser_confirm(intent)["status"] == "succeeded"  # the webhook is lost
    assert services.reconcile() == 0  # too recent: the webhook may still come
    later = timezone.now() + datetime.timedelta(minutes=3)
    assert services.reconcile(now=later) == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLEARED
    # The webhook arriving after all changes nothing.
    late = signed_post(Client(), _intent_event(intent, "payment_intent.succeeded"))
    assert late.json()["status"] == "ignored"
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CLEARED
    assert services.reconcile(now=later) == 0


def test_reconciliation_bounces_a_decline_and_an_abandoned_try(delivered_invoice):
    intent, payment = _open_and_start(Client(), delivered_invoice)
    browser_confirm(intent, "4000000000000002")
    later = timezone.now() + datetime.timedelta(minutes=3)
    assert services.reconcile(now=later) == 1
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.BOUNCED
    retry = services.attempt_record(intent)
    assert services.reconcile(now=timezone.now() + datetime.timedelta(minutes=3)) == 0
    assert services.reconcile(now=timezone.now() + datetime.timedelta(minutes=61)) == 1
    assert Payment.objects.get(pk=retry.pk).status == PaymentStatus.BOUNCED


def test_a_success_the_browser_never_reported_is_recorded_and_cleared(delivered_invoice):
    """The worker died between the processor's answer and the ledger write."""
    client = Client()
    client.get(delivered_invoice.pay_url)
    intent = Intent.objects.get()
    browser_confirm(intent)
    response = signed_post(Client(), _intent_event(intent, "payment_intent.succeeded"))
    assert response.json()["status"] == "applied"
    payment = IntentPayment.objects.get(intent=intent).payment
    assert (payment.status, payment.amount) == (PaymentStatus.CLEARED, Decimal("1000.00"))


# --- the rep hears -----------------------------------------------------------------------


def test_the_rep_hears_at_once_that_the_customer_is_paying_online_then_of_the_bounce(
    delivered_invoice, rep
):
    intent, payment = _open_and_start(Client(), delivered_invoice)
    reminders_scan()
    online = Reminder.objects.get(occurrence=f"p{payment.pk}/online")
    assert online.owner == rep and online.state == ReminderState.DUE
    assert "The customer is paying online: $1,000.00 by card" in online.why
    browser_confirm(intent, "4000000000000002")
    signed_post(Client(), _intent_event(intent, "payment_intent.payment_failed"))
    reminders_scan()
    online.refresh_from_db()
    assert online.state == ReminderState.RESOLVED
    bounced = Reminder.objects.get(kind=ReminderKind.PAYMENT_BOUNCED, owner=rep)
    assert bounced.state == ReminderState.DUE and "bounced" in bounced.why


def test_a_card_number_in_an_event_is_never_stored(delivered_invoice):
    """Stripe objects carry a last 4 at most; a number anywhere in an event is masked
    anyway (and the after-test scanner checks every table)."""
    intent, payment = _open_and_start(Client(), delivered_invoice)
    browser_confirm(intent, "4000000000000002")
    event = _intent_event(intent, "payment_intent.payment_failed")
    event["data"]["object"]["description"] = "card 4000 0000 0000 0002 typed here"
    assert signed_post(Client(), event).json()["status"] == "applied"
    stored = str(WebhookEvent.objects.get(event_id=event["id"]).payload)
    assert "4000 0000 0000 0002" not in stored and "0002" in stored


def test_a_late_decline_of_the_first_try_never_bounces_the_retry(delivered_invoice):
    client = Client()
    intent, first = _open_and_start(client, delivered_invoice)
    browser_confirm(intent, "4000000000000002")
    failed = _intent_event(intent, "payment_intent.payment_failed")  # delivered late
    retry = client.post(f"{delivered_invoice.pay_url}start/").json()["payment"]
    assert Payment.objects.get(pk=first.pk).status == PaymentStatus.BOUNCED
    response = signed_post(Client(), failed)
    assert (response.status_code, response.json()["status"]) == (200, "ignored")
    assert Payment.objects.get(pk=retry).status == PaymentStatus.PENDING


def test_the_pay_page_runs_a_fixed_number_of_queries(
    delivered_invoice, django_assert_max_num_queries
):
    client = Client()
    client.get(delivered_invoice.pay_url)  # the intent is made on the first visit
    with django_assert_max_num_queries(12):
        assert client.get(delivered_invoice.pay_url).status_code == 200


def test_a_statement_link_offers_pay_now_for_each_open_invoice_and_no_other(
    delivered_invoice, rep, customer, other_rep
):
    link = links.customer_link_create(customer=customer, created_by=rep)
    token = links.customer_link_token(link)
    page = Client().get(links.customer_link_path(link)).content.decode()
    assert f"/online/pay/{token}/{delivered_invoice.pk}/" in page
    assert f"Pay now: {delivered_invoice.display_number}" in page
    assert Client().get(f"/online/pay/{token}/{delivered_invoice.pk}/").status_code == 200
    elsewhere = InvoiceFactory(deal=DealFactory(rep=other_rep, deposit_required=False))
    assert Client().get(f"/online/pay/{token}/{elsewhere.pk}/").status_code == 404


def test_an_invoice_paid_by_check_meanwhile_offers_no_card_payment(delivered_invoice, rep):
    client = Client()
    client.get(delivered_invoice.pay_url)  # the intent exists, unpaid
    PaymentFactory(
        deal=delivered_invoice.deal, invoice=delivered_invoice, amount=Decimal("1000.00")
    )
    page = client.get(delivered_invoice.pay_url).content.decode()
    assert "Nothing to pay online" in page and "Pay $" not in page
    assert client.post(f"{delivered_invoice.pay_url}start/").status_code == 409
    assert Payment.objects.filter(method="card").count() == 0
