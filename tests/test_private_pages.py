"""Pages behind the login are cached by no one: Cache-Control: private, no-store
on each of their responses, with DEBUG off as in production (issue 19).

Paths are written out (not reversed, not imported): the test holds whichever
app answers them."""

from decimal import Decimal

import pytest
from django.test import Client

from tests.factories import DealFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _production(settings):
    settings.DEBUG = False


def _not_cached(response) -> bool:
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    return {"private", "no-store"} <= directives and "public" not in directives


def test_the_home_page_is_not_cached(manager_client):
    response = manager_client.get("/")
    assert response.status_code == 200
    assert _not_cached(response)


def test_the_board_export_is_not_cached(manager_client, deal):
    response = manager_client.get("/board/export.csv")
    assert response.status_code == 200 and "csv" in response["Content-Type"]
    assert _not_cached(response)


def test_an_htmx_partial_is_not_cached(rep_client, customer):
    response = rep_client.get(
        f"/deals/terms/?customer={customer.pk}", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "<html" not in response.text
    assert _not_cached(response)


def test_an_invoice_pdf_and_a_statement_pdf_are_not_cached(rep_client, rep, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False)
    invoice = InvoiceFactory(deal=deal, amount=Decimal("120.00"))
    for path in (
        f"/billing/invoices/{invoice.pk}/pdf/",
        f"/billing/customers/{customer.pk}/statement/pdf/",
    ):
        response = rep_client.get(path)
        assert response.status_code == 200, path
        assert response["Content-Type"] == "application/pdf"
        assert _not_cached(response), path


def test_a_refusal_and_the_redirect_to_the_login_are_not_cached(rep_client, other_rep):
    foreign = DealFactory(rep=other_rep)
    assert _not_cached(rep_client.get(f"/deals/{foreign.pk}/"))  # a 404
    anonymous = Client().get("/deals/")
    assert anonymous.status_code == 302 and _not_cached(anonymous)


def test_static_files_stay_cacheable(settings, rep_client):
    settings.WHITENOISE_USE_FINDERS = True
    response = rep_client.get("/static/js/cleared.js")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
