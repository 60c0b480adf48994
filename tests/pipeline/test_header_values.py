"""Values that end up in an email header are one line from the moment they are
entered: a customer's name and company, an invited rep's names (issue 19)."""

import pytest
from django.urls import reverse

from pipeline.models import Customer, Deal, User
from tests.dashboards.test_home_and_moves import GOOD_ROW, _csv

pytestmark = pytest.mark.django_db

BREAKS = ["\r", "\n", "\r\n", "\u2028", "\x0b"]


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
def test_a_line_break_in_a_customers_name_or_company_is_cleaned_on_the_customer_form(
    rep_client, brk
):
    response = rep_client.post(
        "/customers/new/",
        {"name": f"Luis{brk}Ortega", "company": f"Acme{brk}Inc{brk}", "phone": "+1 555 0123"},
    )
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.name, customer.company) == ("Luis Ortega", "Acme Inc")


def test_editing_a_customer_cleans_the_company_too(rep_client, customer):
    response = rep_client.post(
        f"/customers/{customer.pk}/edit/",
        {
            "name": customer.name,
            "company": "Whitfield\r\nDental\rBcc: x@evil.example",
            "phone": "+1 555 0123",
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.company == "Whitfield Dental Bcc: x@evil.example"


def test_the_new_customer_form_inside_the_deal_form_cleans_name_and_company(rep_client):
    data = {
        "new_customer-name": "Ada\rLind",
        "new_customer-company": "Lind\nAB",
        "new_customer-phone": "+1 555 010 0200",
        "new_customer_step": "add",
    }
    response = rep_client.post("/deals/new/customer/", data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert Customer.objects.filter(name="Ada Lind", company="Lind AB").exists()


def test_an_imported_customer_with_a_line_break_in_a_quoted_cell_is_one_line(rep_client):
    row = GOOD_ROW.replace("Zoe Laurent,Laurent Florist", '"Zoe\rLaurent","Laurent\r\nFlorist"')
    response = rep_client.post("/deals/import/", {"csv_text": _csv(row), "confirm": "1"})
    assert response.status_code == 302
    customer = Deal.objects.get().customer
    assert (customer.name, customer.company) == ("Zoe Laurent", "Laurent Florist")


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
def test_an_invited_reps_names_are_one_line(manager_client, brk):
    response = manager_client.post(
        reverse("team_invite"),
        {"email": "sam@example.com", "first_name": f"Sam{brk}", "last_name": f"Or{brk}tiz"},
    )
    assert response.status_code == 302
    sam = User.objects.get(email="sam@example.com")
    assert (sam.first_name, sam.last_name) == ("Sam", "Or tiz")
