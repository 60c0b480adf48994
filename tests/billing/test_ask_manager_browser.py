"""The whole "Ask my manager" loop in headless Chromium (issue 13): the rep's deal
form refuses invoicing a slow payer, the rep asks from there, the manager
approves from the reminder itself, the rep is told and goes on with the deal."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import ExceptionRequest, RequestState
from pipeline.models import Customer, Deal
from reminders.models import Reminder, ReminderKind
from reminders.services import reminders_scan
from tests.browser import log_in
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_rep_asks_the_manager_approves_from_the_reminder_and_the_rep_goes_on(
    browser, page, live_server, rep, manager
):
    slow = CustomerFactory(owner=rep, name="Slow Sam", phone="555 300 0001")
    Customer.objects.filter(pk=slow.pk).update(
        standing="slow", standing_reason="Pays 21 days late on average."
    )
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}/deals/new/")
    page.get_by_label("Customer").select_option(str(slow.pk))
    expect(page.locator("#terms")).to_contain_text("Slow standing")
    page.get_by_label("What is sold").fill("Annual support")
    page.get_by_label("Amount").fill("4800.00")
    page.get_by_label("Invoice — billed after delivery").check()
    soon = timezone.localdate() + datetime.timedelta(days=3)
    page.get_by_label("Expected delivery date").fill(soon.isoformat())
    page.get_by_label("Next step", exact=True).fill("Send the contract")
    page.get_by_label("Next step date").fill(soon.isoformat())
    page.get_by_role("button", name="Log the deal").last.click()

    # Refused, with the way out right there and nothing lost.
    ask = page.locator("#ask-manager")
    expect(ask).to_be_visible()
    expect(page.locator("#id_payment_option_error")).to_contain_text("manager's exception")
    assert page.get_by_label("What is sold").input_value() == "Annual support"
    ask.get_by_label("Why?").fill("Pays late but always pays; a 5-year customer")
    ask.get_by_role("button", name="Ask my manager and log the deal").click()
    expect(page.locator(".flash-success")).to_contain_text("is asked to allow invoicing")
    deal = Deal.objects.get()
    assert (deal.title, deal.payment_option) == ("Annual support", "invoice")
    expect(page.locator("#money-panel")).to_contain_text("waits for your manager's decision")

    # The manager's reminder carries the reason and the buttons (beat's scan makes it).
    reminders_scan(deal_ids=[deal.pk])
    manager_context = browser.new_context(viewport={"width": 375, "height": 812})
    manager_page = manager_context.new_page()
    manager_page.set_default_timeout(10_000)
    log_in(manager_page, live_server, "manager")
    reminder = Reminder.objects.get(kind=ReminderKind.EXCEPTION_ASKED)
    item = manager_page.locator(f"#reminder-{reminder.pk}")
    expect(item).to_contain_text("Pays late but always pays")
    item.get_by_label("Note to the rep").fill("OK this once")
    item.get_by_role("button", name="Approve").click()
    expect(manager_page.locator(".flash-success")).to_contain_text("Approved")
    assert ExceptionRequest.objects.get().state == RequestState.APPROVED
    manager_context.close()

    # The rep is told on their home, and the deal goes on from where it was.
    reminders_scan(deal_ids=[deal.pk])
    told = Reminder.objects.get(kind=ReminderKind.EXCEPTION_DECIDED)
    page.goto(f"{live_server.url}/")
    expect(page.locator(f"#reminder-{told.pk}")).to_contain_text("approved invoicing")
    told_item = page.locator(f"#reminder-{told.pk}")
    told_item.locator("summary", has_text="More").click()  # secondary actions are folded
    told_item.get_by_role("link", name="Open the deal").click()
    panel = page.locator("#money-panel")
    expect(panel).to_contain_text("Approved")
    expect(panel).not_to_contain_text("waits for your manager's decision")
    expect(panel).to_contain_text("OK this once")
    # Going on: the deposit the terms require is recorded as usual.
    page.get_by_role("button", name="Record a payment").click()
    page.locator("#money-action").get_by_label("Method").select_option("check")
    page.locator("#money-action").get_by_role("button", name="Record the payment").click()
    expect(page.locator(".flash-success")).to_contain_text("recorded")
    deal.refresh_from_db()
    assert deal.stage == "deposit"
