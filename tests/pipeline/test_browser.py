"""The pipeline as a rep uses it: in headless Chromium, through the real pages."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from pipeline.models import Deal
from pipeline.stages import Stage
from tests.browser import log_in
from tests.factories import DealFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("username", "heading"),
    [("rep", "Your deals"), ("manager", "Your team"), ("auditor", "Audit")],
)
def test_each_role_logs_in_to_its_home(page, live_server, rep, manager, auditor, username, heading):
    log_in(page, live_server, username)
    assert page.get_by_role("heading", level=1).first.inner_text().startswith(heading)


def test_a_wrong_password_is_refused_with_a_message(page, live_server, rep):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("rep")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text().startswith("Your username and password")


def test_a_rep_creates_a_customer_and_a_deal_adds_a_touch_and_moves_it(page, live_server, rep):
    log_in(page, live_server, "rep")
    page.get_by_role("button", name="Log a deal").click()
    # The customer is added inside the deal form (issue 13).
    page.get_by_role("button", name="Add a new customer").click()
    new_customer = page.locator("#new-customer")
    new_customer.get_by_label("Name").fill("Grace Kim")
    new_customer.get_by_label("Company").fill("Kim Family Pharmacy")
    new_customer.get_by_label("Phone").fill("+1 555 0142")
    new_customer.get_by_text("Billing contact and email, accounting cut-off, notes").click()
    new_customer.get_by_label("Billing email").fill("accounts@kim.example")
    new_customer.get_by_label("Accounting cut-off day").fill("15")
    new_customer.get_by_role("button", name="Add the customer").click()
    expect(new_customer).to_contain_text("Customer Grace Kim added and chosen for this deal.")

    # The standing and the terms it requires are shown while the deal is entered.
    assert "New standing" in page.locator("#terms").inner_text()
    page.get_by_label("What is sold").fill("POS hardware bundle")
    page.get_by_label("Amount").fill("3250.50")
    page.get_by_label("Invoice — billed after delivery").check()
    soon = timezone.localdate() + datetime.timedelta(days=10)
    page.get_by_label("Expected delivery date").fill(soon.isoformat())
    page.get_by_label("Next step date").fill(soon.isoformat())
    page.get_by_label("Next step", exact=True).fill("Confirm the install date")
    page.get_by_role("button", name="Log the deal").click()

    deal = Deal.objects.get()
    page.wait_for_url(f"{live_server.url}/deals/{deal.pk}/")
    # Billing's fields came along: the invoice and its reminders have somewhere to go.
    assert deal.customer.billing_email == "accounts@kim.example" and deal.customer.chase_by_email
    assert "$3,250.50" in page.content()

    # Actions happen in place: a marker on the window survives them.
    page.evaluate("window.__noReload = true")
    touch = page.locator("#touch-form")
    touch.get_by_label("Kind").select_option("call")
    touch.get_by_label("What was discussed").fill("Delivery plan and training")
    touch.get_by_label("What the customer agreed to").fill("A training session on day one")
    touch.get_by_label("Next step", exact=True).fill("Send the training agenda")
    touch.get_by_label("Next step date").fill(soon.isoformat())
    touch.get_by_role("button", name="Save touch").click()
    page.get_by_text("Touch recorded").wait_for()
    assert "A training session on day one" in page.locator(".timeline").inner_text()

    # Only legal moves are offered (a forged illegal one is refused: view tests).
    page.get_by_text("Another stage, or lost").click()
    offered = (
        page.get_by_label("Move to")
        .locator("option")
        .evaluate_all("options => options.map(o => o.value)")
    )
    assert "delivered" not in offered and "audit_confirmed" not in offered
    assert Deal.objects.get().stage == Stage.PROMISED

    # A legal move goes through and lands on the timeline.
    page.get_by_label("Move to").select_option("lost")
    page.get_by_label("Why was it lost?").select_option("competitor")
    page.get_by_role("button", name="Move", exact=True).click()
    page.get_by_text("Deal moved to Lost").wait_for()
    assert Deal.objects.get().stage == Stage.LOST
    assert page.evaluate("window.__noReload") is True


def test_a_rep_cannot_reach_another_reps_deal(page, live_server, rep, other_rep):
    foreign = DealFactory(rep=other_rep, title="Someone else's deal")
    log_in(page, live_server, "rep")
    response = page.goto(f"{live_server.url}/deals/{foreign.pk}/")
    assert response.status == 404
    assert "Someone else's deal" not in page.content()


def test_the_deal_page_works_on_a_phone(page, live_server, rep, deal):
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}/deals/{deal.pk}/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
