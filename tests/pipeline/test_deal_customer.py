"""A new customer created inside the deal form, keeping what was typed; likely
duplicates warned about, on the deal form and on the customers list (issue 13)."""

import re

import pytest

from pipeline.models import Customer
from tests.factories import CustomerFactory, DealFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
DRAFT = {
    "title": "Kept title",
    "amount": "1250.00",
    "payment_option": "invoice",
    "next_step": "Kept next step",
    "notes": "Kept notes",
}


def _new_customer(**fields) -> dict:
    data = {"name": "Ada Lind", "phone": "+1 555 010 0200", "company": "", "email": ""}
    data.update(fields)
    return {f"new_customer-{key}": value for key, value in data.items()}


def test_the_inline_customer_form_is_a_partial_for_htmx(rep_client):
    response = rep_client.get("/deals/new/customer/", headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'name="new_customer-name"' in response.text
    assert 'value="add"' in response.text


def test_a_new_customer_added_inline_is_chosen_and_the_deal_form_is_left_alone(rep_client, rep):
    data = {**DRAFT, **_new_customer(), "new_customer_step": "add"}
    response = rep_client.post("/deals/new/customer/", data, headers=HTMX)
    assert response.status_code == 200
    customer = Customer.objects.get(name="Ada Lind")
    assert customer.owner == rep and customer.standing == "new"
    html = response.text
    assert "Customer Ada Lind added and chosen for this deal." in html
    # Only the customer list and the terms panel are swapped, out of band.
    assert '<select name="customer" id="id_customer"' in html and 'hx-swap-oob="outerHTML"' in html
    assert f'<option value="{customer.pk}" selected>' in html
    assert 'id="terms"' in html and "New standing" in html
    assert 'name="title"' not in html


def test_bad_customer_input_comes_back_in_the_partial_next_to_the_field(rep_client):
    data = {**DRAFT, **_new_customer(phone="12"), "new_customer_step": "add"}
    response = rep_client.post("/deals/new/customer/", data, headers=HTMX)
    assert response.status_code == 422
    assert 'id="id_new_customer-phone_error"' in response.text
    assert "Enter a phone number the customer can be called on." in response.text
    assert 'value="Ada Lind"' in response.text
    assert not Customer.objects.filter(name="Ada Lind").exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "  dana   WHITFIELD "},
        {"name": "Someone Else", "email": "DANA@example.com"},
        {"name": "Someone Else", "phone": "(555) 777-1234"},
    ],
)
def test_a_likely_duplicate_is_warned_about_before_it_is_added(rep_client, rep, fields):
    CustomerFactory(
        owner=rep, name="Dana Whitfield", email="dana@example.com", phone="555 777 1234"
    )
    data = {**DRAFT, **_new_customer(**fields), "new_customer_step": "add"}
    response = rep_client.post("/deals/new/customer/", data, headers=HTMX)
    assert "use this customer?" in response.text
    assert "Dana Whitfield" in response.text and 'name="use_customer"' in response.text
    assert 'value="add_anyway"' in response.text
    assert Customer.objects.count() == 1
    # Confirmed as a different customer: added.
    data["new_customer_step"] = "add_anyway"
    rep_client.post("/deals/new/customer/", data, headers=HTMX)
    assert Customer.objects.count() == 2


def test_another_reps_customer_is_named_only_as_a_match_and_cannot_be_picked(rep_client, other_rep):
    # Issue 20: a match the rep may not see is told, without its details; the manager decides.
    theirs = CustomerFactory(owner=other_rep, name="Ada Lind", company="")
    data = {**DRAFT, **_new_customer(), "new_customer_step": "add"}
    response = rep_client.post("/deals/new/customer/", data, headers=HTMX)
    assert "A matching customer already exists" in response.text
    assert f'value="{theirs.pk}"' not in response.text and "other_rep" not in response.text
    assert Customer.objects.filter(name="Ada Lind").count() == 1
    rep_client.post(
        "/deals/new/customer/", {**data, "new_customer_step": "add_anyway"}, headers=HTMX
    )
    assert Customer.objects.filter(name="Ada Lind").count() == 2
    forged = rep_client.post("/deals/new/customer/", {"use_customer": theirs.pk}, headers=HTMX)
    assert forged.status_code == 404


def test_picking_the_existing_customer_chooses_it(rep_client, customer):
    response = rep_client.post(
        "/deals/new/customer/", {**DRAFT, "use_customer": customer.pk}, headers=HTMX
    )
    assert f'<option value="{customer.pk}" selected>' in response.text
    assert "Dana Whitfield chosen for this deal." in response.text


def test_without_javascript_the_customer_step_is_a_page_that_keeps_the_deal(rep_client):
    opened = rep_client.post("/deals/new/customer/", {**DRAFT, "new_customer_step": "open"})
    assert opened.status_code == 200
    assert '<input type="hidden" name="title" value="Kept title">' in opened.text
    assert '<input type="hidden" name="notes" value="Kept notes">' in opened.text
    added = rep_client.post(
        "/deals/new/customer/", {**DRAFT, **_new_customer(), "new_customer_step": "add"}
    )
    customer = Customer.objects.get(name="Ada Lind")
    html = added.text
    # The deal form again, as typed, the new customer chosen, nothing logged yet.
    assert "<h1>Log a deal</h1>" in html
    assert f'<option value="{customer.pk}" selected>' in html
    assert 'value="Kept title"' in html and 'value="1250.00"' in html
    assert "Kept notes" in html and 'value="Kept next step"' in html
    radio = r'<input type="radio" name="payment_option" value="invoice"[^>]* checked'
    assert re.search(radio, html)
    assert 'action="/deals/new/"' in html


def test_a_deal_sent_with_the_customer_form_open_keeps_the_customers_typing(rep_client):
    response = rep_client.post("/deals/new/", {**DRAFT, **_new_customer(company="Lind AB")})
    assert 'value="Lind AB"' in response.text and 'name="new_customer-company"' in response.text


def test_the_standalone_customer_page_warns_about_a_duplicate_too(rep_client, customer):
    data = {"name": "dana whitfield", "phone": "555 1234 99"}
    response = rep_client.post("/customers/new/", data)
    assert "use this customer?" in response.text
    assert Customer.objects.count() == 1
    rep_client.post(
        "/customers/new/",
        {"name": "dana whitfield", "phone": "555 1234 99", "new_customer_step": "add_anyway"},
    )
    assert Customer.objects.count() == 2


def test_the_customers_list_shows_standing_and_marks_likely_duplicates(
    rep_client, rep, django_assert_max_num_queries
):
    first = CustomerFactory(owner=rep, name="Dana Whitfield", phone="555 777 1234")
    CustomerFactory(owner=rep, name="dana whitfield", phone="555 000 9999")
    slow = CustomerFactory(owner=rep, name="Slow Payer Inc", phone="555 444 3333")
    Customer.objects.filter(pk=slow.pk).update(standing="slow")
    for index in range(20):
        other = CustomerFactory(owner=rep, name=f"Customer {index}", phone=f"555 100 {index:04d}")
        DealFactory(rep=rep, customer=other)
    with django_assert_max_num_queries(8):
        response = rep_client.get("/customers/")
    html = response.text
    assert html.count("likely duplicate") == 2
    assert f'href="{first.get_absolute_url()}">Dana Whitfield' in html
    assert '<span class="badge standing-slow"' in html
    assert html.count("standing-new") >= 20


def test_an_auditor_cannot_add_customers_from_a_deal_form(auditor_client):
    data = {**_new_customer(), "new_customer_step": "add"}
    assert auditor_client.get("/deals/new/customer/").status_code == 404
    assert auditor_client.post("/deals/new/customer/", data).status_code == 404
    assert not Customer.objects.exists()


def test_a_customer_added_in_the_deal_form_gets_a_billing_email_and_is_chased_by_default(
    rep_client,
):
    # The partial offers every field of the customers page that billing needs:
    # the payment reminders go by email unless the rep unticks it.
    form = rep_client.get("/deals/new/customer/", headers=HTMX).text
    assert 'name="new_customer-billing_email"' in form
    assert re.search(r'<input type="checkbox" name="new_customer-chase_by_email"[^>]*checked', form)
    fields = _new_customer(billing_email="accounts@lind.example", chase_by_email="on")
    rep_client.post("/deals/new/customer/", {**DRAFT, **fields, "new_customer_step": "add"})
    customer = Customer.objects.get(name="Ada Lind")
    assert customer.billing_email == "accounts@lind.example"
    assert customer.chase_by_email is True
