"""The customer's card-on-file pages in headless Chromium, against a real localstripe:
the card typed into the processor's field (never Cleared's), 3-D Secure played by
Stripe.js, and the deal's money following."""

import pytest

from billing.models import PaymentMethod, PaymentStatus
from online import on_file
from pipeline.stages import Stage
from tests.on_file.test_on_file import audited_and_delivered

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def put_card_on_file(page, live_server, setup, number: str, three_d_secure: bool = False):
    page.goto(f"{live_server.url}/online/card/c/{on_file.setup_token(setup)}/")
    assert page.get_by_text("Test payments — no real money moves.").is_visible()
    page.get_by_placeholder("number").fill(number)
    page.get_by_placeholder("exp_month").fill("12")
    page.get_by_placeholder("exp_year").fill("31")
    page.get_by_placeholder("cvc").fill("123")
    page.get_by_placeholder("postal_code").fill("10001")
    page.get_by_role("button", name="Put my card on file").click()
    if three_d_secure:
        page.get_by_role("button", name="Complete authentication").click()
    page.get_by_text("is on file").wait_for()


def test_the_customer_puts_a_card_on_file_and_the_charge_after_delivery_clears(
    page, live_server, on_file_deal, rep
):
    setup = on_file.on_file_link_send(deal_id=on_file_deal.pk, actor=rep)
    put_card_on_file(page, live_server, setup, "4242424242424242")
    assert page.get_by_text("Visa •••• 4242").is_visible()
    method = PaymentMethod.objects.get(deal=on_file_deal)
    assert method.last4 == "4242" and method.processor_token.startswith("pm_")
    audited_and_delivered(on_file_deal, rep)
    charge = on_file.on_file_charge(deal_id=on_file_deal.pk, actor=rep)
    assert charge.payment.status == PaymentStatus.CLEARED
    on_file_deal.refresh_from_db()
    assert on_file_deal.stage == Stage.PAYMENT_CLEARED


def test_the_customer_authenticates_a_charge_their_bank_asked_about(
    page, live_server, on_file_deal, rep
):
    setup = on_file.on_file_link_send(deal_id=on_file_deal.pk, actor=rep)
    put_card_on_file(page, live_server, setup, "4000002760003184", three_d_secure=True)
    audited_and_delivered(on_file_deal, rep)
    charge = on_file.on_file_charge(deal_id=on_file_deal.pk, actor=rep)
    assert charge.payment.status == PaymentStatus.PENDING and charge.needs_action_at
    page.goto(f"{live_server.url}/online/card/authenticate/{on_file.auth_token(charge)}/")
    page.get_by_role("button", name="Confirm with my bank").click()
    page.get_by_role("button", name="Complete authentication").click()
    page.get_by_text("the payment went through").wait_for()
    charge.payment.refresh_from_db()
    assert charge.payment.status == PaymentStatus.CLEARED
    on_file_deal.refresh_from_db()
    assert on_file_deal.stage == Stage.PAYMENT_CLEARED
