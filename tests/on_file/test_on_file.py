"""The card on file against a real localstripe: the customer puts it on file from a link,
the card is charged after the audit and delivery — cleared, declined (bounced, rep
reminded) or waiting on the customer to authenticate — never twice, never early."""

import re
from decimal import Decimal

import pytest
from django.core import mail

from billing.models import PaymentMethod, PaymentStatus
from online import on_file, refunds
from online.models import OnFileCharge, OnFileSetup, TeamCharging
from pipeline import services as pipeline_services
from pipeline.stages import SYSTEM, Stage
from reminders.models import Reminder
from tests.on_file.conftest import authenticate, confirm_setup
from tests.online.conftest import signed_post

pytestmark = pytest.mark.django_db

DECLINES_ON_CHARGE = "4000000000000341"
NEEDS_AUTHENTICATION = "4000002760003184"


def card_on_file(deal, rep, number="4242424242424242"):
    setup = on_file.on_file_link_send(deal_id=deal.pk, actor=rep)
    confirm_setup(setup, number)
    return on_file.on_file_setup_complete(setup_id=setup.pk)


def audited_and_delivered(deal, rep):
    pipeline_services.deal_move(
        deal_id=deal.pk, to_stage=Stage.AUDIT_CONFIRMED, actor=None, as_role=SYSTEM
    )
    return pipeline_services.deal_move(deal_id=deal.pk, to_stage=Stage.DELIVERED, actor=rep)


# --- putting a card on file -------------------------------------------


def test_the_customer_gets_a_link_and_their_card_shows_brand_and_last_4(
    on_file_deal, rep, rep_client, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = rep_client.post(f"/online/card/deals/{on_file_deal.pk}/send-link/")
    assert response.status_code == 302
    setup = OnFileSetup.objects.get(deal=on_file_deal)
    (email,) = mail.outbox
    assert email.to == ["pat@customer.example"]
    token = re.search(r"/online/card/c/([^/]+)/", email.body).group(1)
    assert on_file.setup_for_token(token) == setup
    page = rep_client.get(f"/online/card/c/{token}/")
    assert page.status_code == 200 and "Put my card on file" in page.content.decode()
    assert confirm_setup(setup, "4242424242424242")["status"] == "succeeded"
    done = rep_client.get(f"/online/card/c/{token}/done/")
    assert "Visa •••• 4242" in done.content.decode()
    method = PaymentMethod.objects.get(deal=on_file_deal)
    assert (method.brand, method.last4) == ("Visa", "4242")
    assert method.processor_token.startswith("pm_")
    on_file_deal.refresh_from_db()
    assert on_file_deal.stage == Stage.DEPOSIT  # the card on file is the deposit
    html = rep_client.get(on_file_deal.get_absolute_url()).content.decode()
    assert "Visa •••• 4242" in html and "put on file by the customer" in html


def test_coming_back_twice_keeps_the_card_once(on_file_deal, rep):
    method = card_on_file(on_file_deal, rep)
    setup = OnFileSetup.objects.get(deal=on_file_deal)
    assert on_file.on_file_setup_complete(setup_id=setup.pk) == method
    assert PaymentMethod.objects.filter(deal=on_file_deal).count() == 1


def test_a_forged_or_tampered_link_is_a_bare_404(on_file_deal, rep, client):
    setup = on_file.on_file_link_send(deal_id=on_file_deal.pk, actor=rep)
    token = on_file.setup_token(setup)
    assert client.get(f"/online/card/c/{token[:-2]}xx/").status_code == 404
    assert client.get("/online/card/c/garbage/").status_code == 404
    assert client.get("/online/card/authenticate/garbage/").status_code == 404


def test_another_rep_cannot_send_a_link_or_charge(on_file_deal, other_rep_client):
    assert other_rep_client.post(f"/online/card/deals/{on_file_deal.pk}/send-link/").status_code
    assert (
        other_rep_client.post(f"/online/card/deals/{on_file_deal.pk}/send-link/").status_code == 404
    )
    assert other_rep_client.post(f"/online/card/deals/{on_file_deal.pk}/charge/").status_code == 404
    assert not OnFileSetup.objects.exists() and not OnFileCharge.objects.exists()


# --- charging it -------------------------------------------


def test_a_forged_charge_before_the_audit_and_delivery_charges_nothing(
    on_file_deal, rep, rep_client
):
    card_on_file(on_file_deal, rep)
    response = rep_client.post(f"/online/card/deals/{on_file_deal.pk}/charge/", follow=True)
    assert "only after its audit is confirmed" in response.content.decode()
    pipeline_services.deal_move(
        deal_id=on_file_deal.pk, to_stage=Stage.AUDIT_CONFIRMED, actor=None, as_role=SYSTEM
    )
    response = rep_client.post(f"/online/card/deals/{on_file_deal.pk}/charge/", follow=True)
    assert "once delivery is recorded" in response.content.decode()
    assert not OnFileCharge.objects.exists()
    assert not on_file_deal.payments.exists()


def test_charged_after_delivery_the_card_clears_and_the_deal_is_paid(on_file_deal, rep, rep_client):
    card_on_file(on_file_deal, rep)
    audited_and_delivered(on_file_deal, rep)
    html = rep_client.get(on_file_deal.get_absolute_url()).content.decode()
    assert "Charge the card on file $1,000.00" in html
    response = rep_client.post(f"/online/card/deals/{on_file_deal.pk}/charge/")
    assert response.status_code == 302
    charge = OnFileCharge.objects.get()
    assert charge.payment.status == PaymentStatus.CLEARED
    assert charge.payment.amount == Decimal("1000.00") and charge.charged_by == rep
    on_file_deal.refresh_from_db()
    assert on_file_deal.stage == Stage.PAYMENT_CLEARED


def test_a_double_click_charges_once(on_file_deal, rep):
    card_on_file(on_file_deal, rep)
    audited_and_delivered(on_file_deal, rep)
    on_file.on_file_charge(deal_id=on_file_deal.pk, actor=rep)
    with pytest.raises(on_file.billing.BillingError, match="Nothing is left to pay"):
        on_file.on_file_charge(deal_id=on_file_deal.pk, actor=rep)
    assert OnFileCharge.objects.count() == 1 and on_file_deal.payments.count() == 1


def test_a_charge_the_worker_never_sent_is_sent_once_by_the_reconciliation(
    on_file_deal, rep, settings
):
    method = card_on_file(on_file_deal, rep)
    audited_and_delivered(on_file_deal, rep)
    # The worker died after the charge's row committed, before the processor answered.
    charge = OnFileCharge.objects.create(
        deal=on_file_deal, method=method, amount=Decimal("1000.00"), charged_by=rep
    )
    with pytest.raises(on_file.billing.BillingError, match="already under way"):
        on_file.on_file_charge(deal_id=on_file_deal.pk, actor=rep)
    settings.ONLINE_RECONCILE_AFTER_SECONDS = 0
    assert on_file.on_file_reconcile() == 1
    assert on_file.on_file_reconcile() == 0
    charge.refresh_from_db()
    assert charge.payment.status == PaymentStatus.CLEARED
    assert on_file_deal.payments.count() == 1


def test_a_declined_card_bounces_and_the_rep_is_reminded(
    on_file_deal, rep, rep_client, eager_tasks, django_capture_on_commit_callbacks
):
    card_on_file(on_file_deal, rep, DECLINES_ON_CHARGE)
    audited_and_delivered(on_file_deal, rep)
    with django_capture_on_commit_callbacks(execute=True):
        rep_client.post(f"/online/card/deals/{on_file_deal.pk}/charge/")
    charge = OnFileCharge.objects.get()
    assert charge.payment.status == PaymentStatus.BOUNCED
    assert "declined" in charge.payment.events.latest("at").reason
    on_file_deal.refresh_from_db()
    assert on_file_deal.stage == Stage.DELIVERED
    assert Reminder.objects.filter(deal=on_file_deal, kind="payment_bounced").exists()


def test_a_card_needing_authentication_waits_on_the_customer_who_gets_a_link(
    on_file_deal, rep, rep_client, client, eager_tasks, django_capture_on_commit_callbacks
):
    card_on_file(on_file_deal, rep, NEEDS_AUTHENTICATION)
    audited_and_delivered(on_file_deal, rep)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        rep_client.post(f"/online/card/deals/{on_file_deal.pk}/charge/")
    charge = OnFileCharge.objects.get()
    assert charge.payment.status == PaymentStatus.PENDING and charge.needs_action_at
    (email,) = mail.outbox
    token = re.search(r"/online/card/authenticate/([^/]+)/", email.body).group(1)
    assert on_file.charge_for_token(token) == charge
    html = rep_client.get(on_file_deal.get_absolute_url()).content.decode()
    assert "Waiting on the customer" in html
    page = client.get(f"/online/card/authenticate/{token}/")
    assert "Confirm with my bank" in page.content.decode()
    assert authenticate(charge.intent.processor_id)["status"] == "succeeded"
    done = client.get(f"/online/card/authenticate/{token}/done/")
    assert "the payment went through" in done.content.decode()
    charge.payment.refresh_from_db()
    assert charge.payment.status == PaymentStatus.CLEARED
    on_file_deal.refresh_from_db()
    assert on_file_deal.stage == Stage.PAYMENT_CLEARED


def test_the_team_charges_on_delivery_when_its_manager_says_so(
    on_file_deal, rep, manager_client, eager_tasks, django_capture_on_commit_callbacks
):
    card_on_file(on_file_deal, rep)
    manager_client.post("/online/card/team/", {"charge_on_delivery": "on"})
    assert TeamCharging.objects.get().charge_on_delivery
    with django_capture_on_commit_callbacks(execute=True):
        audited_and_delivered(on_file_deal, rep)
    charge = OnFileCharge.objects.get()
    assert charge.charged_by is None and charge.payment.status == PaymentStatus.CLEARED
    on_file_deal.refresh_from_db()
    assert on_file_deal.stage == Stage.PAYMENT_CLEARED


def test_without_the_team_setting_delivery_charges_nothing(
    on_file_deal, rep, eager_tasks, django_capture_on_commit_callbacks
):
    card_on_file(on_file_deal, rep)
    with django_capture_on_commit_callbacks(execute=True):
        audited_and_delivered(on_file_deal, rep)
    assert not OnFileCharge.objects.exists()


def test_the_manager_sees_and_turns_the_team_setting_on_and_off(manager_client, manager):
    page = manager_client.get("/online/card/team/")
    assert page.status_code == 200
    assert "charged only when the rep or you press" in page.content.decode()
    manager_client.post("/online/card/team/", {"charge_on_delivery": "on"})
    page = manager_client.get("/online/card/team/")
    assert "charged automatically when delivery is recorded" in page.content.decode()
    manager_client.post("/online/card/team/", {})
    assert not TeamCharging.objects.get(manager=manager).charge_on_delivery


def test_a_rep_cannot_change_the_team_setting(rep_client):
    assert rep_client.post("/online/card/team/", {"charge_on_delivery": "on"}).status_code == 403
    assert not TeamCharging.objects.exists()


# --- refunds through the processor -------------------------------------------


def test_a_refund_of_a_charged_card_goes_back_through_the_processor(
    on_file_deal, rep, manager, eager_tasks, django_capture_on_commit_callbacks
):
    card_on_file(on_file_deal, rep)
    audited_and_delivered(on_file_deal, rep)
    charge = on_file.on_file_charge(deal_id=on_file_deal.pk, actor=rep)
    with django_capture_on_commit_callbacks(execute=True):
        refund = on_file.billing.payment_refund(
            payment_id=charge.payment_id, actor=manager, amount=Decimal("250.00"), reason="Late"
        )
    refund.refresh_from_db()
    assert refund.status == "refunded" and refund.processor_ref.startswith("re_")
    found = on_file.processor.client().v1.refunds.retrieve(refund.processor_ref)
    assert found.amount == 25000 and found.metadata["cleared_refund"] == str(refund.pk)
    on_file_deal.refresh_from_db()
    assert on_file_deal.cleared_amount == Decimal("750.00")


def test_a_refund_the_worker_never_sent_is_sent_by_the_reconciliation(
    on_file_deal, rep, manager, settings
):
    card_on_file(on_file_deal, rep)
    audited_and_delivered(on_file_deal, rep)
    charge = on_file.on_file_charge(deal_id=on_file_deal.pk, actor=rep)
    refund = on_file.billing.payment_refund(
        payment_id=charge.payment_id, actor=manager, amount=Decimal("1000.00"), reason="Cancel"
    )
    assert refund.status == "processing"  # the task never ran: the worker died
    settings.ONLINE_RECONCILE_AFTER_SECONDS = 0
    assert refunds.refunds_reconcile() == 1
    refund.refresh_from_db()
    assert refund.status == "refunded"


# --- the processor's events -------------------------------------------


def test_the_processors_setup_event_puts_the_card_on_file_without_the_customer_coming_back(
    on_file_deal, rep, client
):
    setup = on_file.on_file_link_send(deal_id=on_file_deal.pk, actor=rep)
    found = confirm_setup(setup, "4242424242424242")
    event = {"id": "evt_setup_1", "type": "setup_intent.succeeded", "data": {"object": found}}
    assert signed_post(client, event).status_code == 200
    assert PaymentMethod.objects.get(deal=on_file_deal).last4 == "4242"
    assert signed_post(client, event).json()["status"] == "duplicate"
    assert PaymentMethod.objects.filter(deal=on_file_deal).count() == 1


def test_the_processors_refund_event_settles_a_refund_its_worker_never_answered(
    on_file_deal, rep, manager, client
):
    card_on_file(on_file_deal, rep)
    audited_and_delivered(on_file_deal, rep)
    charge = on_file.on_file_charge(deal_id=on_file_deal.pk, actor=rep)
    refund = on_file.billing.payment_refund(
        payment_id=charge.payment_id, actor=manager, amount=Decimal("100.00"), reason="Goodwill"
    )
    # The worker asked the processor, then died before writing its answer down.
    made = on_file.processor.refund_create(
        intent_id=charge.intent.processor_id,
        amount=refund.amount,
        idempotency_key=refunds.refund_key(refund.pk),
        metadata={"cleared_refund": str(refund.pk)},
    )
    charge_object = {
        "id": "ch_x",
        "object": "charge",
        "refunds": {
            "data": [{"id": made.id, "status": "succeeded", "metadata": made.metadata.to_dict()}]
        },
    }
    event = {"id": "evt_refund_1", "type": "charge.refunded", "data": {"object": charge_object}}
    assert signed_post(client, event).status_code == 200
    refund.refresh_from_db()
    assert (refund.status, refund.processor_ref) == ("refunded", made.id)
