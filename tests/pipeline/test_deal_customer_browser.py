"""A new customer added inside the deal form, in headless Chromium (issue 13):
the htmx partial opens, refuses bad input in place, warns about a likely
duplicate, and the customer is chosen with everything typed kept."""

import pytest
from playwright.sync_api import expect

from pipeline.models import Customer
from tests.browser import log_in
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_customer_is_added_inside_the_deal_form_keeping_the_deal(page, live_server, rep):
    CustomerFactory(owner=rep, name="Dana Whitfield", phone="555 777 1234")
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}/deals/new/")
    page.evaluate("window.__not_reloaded = true")
    page.get_by_label("What is sold").fill("Kept title")
    page.get_by_label("Amount").fill("1250.00")
    page.get_by_label("Notes").fill("Kept notes")

    page.get_by_role("button", name="Add a new customer").click()
    box = page.locator("#new-customer")
    box.get_by_label("Name").fill("dana  whitfield")
    box.get_by_label("Phone").fill("12")
    box.get_by_role("button", name="Add the customer").click()
    expect(box.locator(".field-error")).to_contain_text("Enter a phone number")
    box.get_by_label("Phone").fill("555 888 0000")
    box.get_by_role("button", name="Add the customer").click()
    expect(box.locator("#likely-duplicates")).to_contain_text("Dana Whitfield")
    box.get_by_role("button", name="No, it's a different customer: add it").click()
    expect(box).to_contain_text("added and chosen for this deal")

    added = Customer.objects.get(name="dana whitfield")  # one line, one space (single_line)
    assert page.get_by_label("Customer").input_value() == str(added.pk)
    expect(page.locator("#terms")).to_contain_text("New standing")
    assert page.get_by_label("What is sold").input_value() == "Kept title"
    assert page.get_by_label("Amount").input_value() == "1250.00"
    assert page.get_by_label("Notes").input_value() == "Kept notes"
    assert page.evaluate("window.__not_reloaded") is True


def test_enter_in_a_deal_field_logs_the_deal_not_the_customer_step(page, live_server, rep):
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}/deals/new/")
    page.get_by_label("What is sold").fill("Kept title")
    page.get_by_label("What is sold").press("Enter")
    # The deal form was sent (and refused by the server, next to its fields).
    expect(page.locator("#id_next_step_error")).to_contain_text("Write the next step")
    assert page.url == f"{live_server.url}/deals/new/"
    assert page.locator("#new-customer fieldset").count() == 0
    assert page.get_by_label("What is sold").input_value() == "Kept title"
    # The field in error has the focus.
    assert page.evaluate("document.activeElement.name") == "customer"
