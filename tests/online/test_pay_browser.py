"""The customer pays from their link in headless Chromium, typing the test card into the
processor's own field (localstripe's Stripe.js), while localstripe really sends its
webhooks to the live server; the rep's open home (not reloaded) follows."""

import os
import time
from pathlib import Path

import pytest
from django.db import OperationalError
from playwright.sync_api import expect

from billing.models import Payment, PaymentStatus, WebhookEvent
from pipeline.stages import Stage
from reminders.services import reminders_scan
from tests.browser import log_in
from tests.online.conftest import register_webhook

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres(
        "localstripe's webhook, the pay page and the rep's polls write at once: SQLite's "
        "shared in-memory database locks whole tables"
    ),
]

SHOTS = os.environ.get("CLEARED_SHOTS_DIR")


def _wait_for(check, seconds: float = 20):
    """Poll the database until ``check()``; SQLite's shared in-memory database may be
    locked a moment by the live server's own write."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except OperationalError:
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


@pytest.fixture
def webhooks_here(localstripe, live_server, settings):
    settings.REMINDERS_POLL_SECONDS = 1
    register_webhook(localstripe, f"{live_server.url}/online/stripe/webhook/")


def _pay(browser, live_server, invoice, card: str):
    """The customer (no login, their own browser) opens the link and pays."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    customer = context.new_page()
    violations = []
    customer.on(
        "console", lambda m: "Content-Security-Policy" in m.text and violations.append(m.text)
    )
    customer.goto(f"{live_server.url}/billing/pay/{invoice.token}/")
    customer.get_by_role("link", name="Pay now").click()
    expect(customer.locator(".test-mode")).to_contain_text("Test payments — no real money moves")
    field = customer.locator("#card-element")
    field.locator('input[placeholder="number"]').fill(card)
    field.locator('input[placeholder="exp_month"]').fill("12")
    field.locator('input[placeholder="exp_year"]').fill("31")
    field.locator('input[placeholder="cvc"]').fill("123")
    field.locator('input[placeholder="postal_code"]').fill("10001")
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        customer.screenshot(path=f"{SHOTS}/pay-page.png", full_page=True)
    customer.get_by_role("button", name="Pay $1,000.00").click()
    return customer, context, violations


def test_the_customer_pays_with_the_test_card_and_the_deal_reaches_payment_cleared(
    page, browser, live_server, webhooks_here, delivered_invoice, rep
):
    log_in(page, live_server, "rep")
    panel = page.locator("#reminders-panel")
    cleared = page.locator("#home-month .tile").nth(2)  # Promised, Received, Cleared
    expect(cleared).to_contain_text("Cleared")
    expect(cleared).to_contain_text("$0.00")
    page.evaluate("window.__not_reloaded = true")

    customer, context, violations = _pay(
        browser, live_server, delivered_invoice, "4242424242424242"
    )
    _wait_for(lambda: Payment.objects.filter(deal=delivered_invoice.deal).exists())
    reminders_scan()  # beat's scan: the rep hears at once
    expect(customer.get_by_role("status")).to_contain_text("went through")
    payment = Payment.objects.get(deal=delivered_invoice.deal)
    expect(panel).to_contain_text("The customer is paying online", timeout=10_000)

    # localstripe's payment_intent.succeeded webhook reaches the live server.
    _wait_for(lambda: Payment.objects.get(pk=payment.pk).status == PaymentStatus.CLEARED)
    assert WebhookEvent.objects.filter(event_id__startswith="evt_", payment=payment).exists()
    delivered_invoice.deal.refresh_from_db()
    assert delivered_invoice.deal.stage == Stage.PAYMENT_CLEARED
    reminders_scan()
    expect(panel).not_to_contain_text("The customer is paying online", timeout=10_000)
    # The rep's open home shows the money cleared this month, without a reload.
    expect(cleared).to_contain_text("$1,000.00", timeout=10_000)
    assert page.evaluate("window.__not_reloaded") is True
    page.goto(f"{live_server.url}{delivered_invoice.deal.get_absolute_url()}")
    expect(page.locator("body")).to_contain_text("Payment cleared")

    # A second visit finds the payment, never a second charge.
    customer.goto(customer.url)
    expect(customer.get_by_role("status")).to_contain_text("went through")
    expect(customer.get_by_role("button", name="Pay $1,000.00")).to_have_count(0)
    assert violations == []
    context.close()


def test_a_declined_card_bounces_and_the_rep_is_reminded(
    page, browser, live_server, webhooks_here, delivered_invoice, rep
):
    log_in(page, live_server, "rep")
    panel = page.locator("#reminders-panel")
    customer, context, violations = _pay(
        browser, live_server, delivered_invoice, "4000000000000002"
    )
    expect(customer.locator("#pay-error")).to_contain_text("Your card was declined.")
    expect(customer.get_by_role("button", name="Pay $1,000.00")).to_be_enabled()
    _wait_for(
        lambda: Payment.objects.filter(
            deal=delivered_invoice.deal, status=PaymentStatus.BOUNCED
        ).exists()
    )
    reminders_scan()
    expect(panel).to_contain_text("bounced", timeout=10_000)
    assert violations == []
    context.close()
