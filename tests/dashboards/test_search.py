"""The nav's search box (issue 20, section 6): an invoice number, a phone or an
email finds the deal and the customer, within what the person may see."""

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.factories import CustomerFactory, DealFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dana(rep):
    return CustomerFactory(
        owner=rep, name="Dana Whitfield", phone="+1 (555) 010-1234", email="dana@whitfield.test"
    )


@pytest.fixture
def dana_deal(rep, dana):
    return DealFactory(rep=rep, customer=dana, title="Website redesign")


@pytest.fixture
def invoice(dana_deal):
    return InvoiceFactory(deal=dana_deal, amount=Decimal("900.00"), number=9)


def _search(client, q):
    response = client.get(reverse("search"), {"q": q})
    assert response.status_code == 200
    return response.content.decode()


class _InputValues(HTMLParser):
    """Each input's value by its id, as a browser reads the page."""

    def __init__(self, page: str):
        super().__init__()
        self.values: dict[str, str] = {}
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("id"):
            self.values[a["id"]] = a.get("value") or ""


def test_an_invoice_number_finds_its_deal_and_customer(rep_client, invoice, dana_deal, dana):
    for typed in ("INV-00009", "inv-9", "9"):
        page = _search(rep_client, typed)
        assert "INV-00009" in page
        assert dana_deal.get_absolute_url() in page
        assert dana.get_absolute_url() in page


def test_the_nav_box_shows_the_searched_text_without_the_nul_byte(rep_client, dana):
    # The raw query echoed back showed the NUL as "\ufffd" in the nav box.
    page = _search(rep_client, "Dana\x00 Whitfield")
    values = _InputValues(page).values
    assert values["nav-q"] == values["search-q"] == "Dana Whitfield"
    assert "\x00" not in page and "\ufffd" not in page


def test_a_phone_however_typed_finds_the_customer_and_deal(rep_client, dana_deal, dana):
    page = _search(rep_client, "555 0101234")
    assert "Read as a phone number" in page
    assert dana.get_absolute_url() in page
    assert dana_deal.get_absolute_url() in page


def test_an_email_finds_the_customer(rep_client, dana_deal, dana):
    page = _search(rep_client, "DANA@whitfield.test")
    assert dana.get_absolute_url() in page
    assert dana_deal.get_absolute_url() in page


def test_another_reps_invoice_is_not_found(other_rep_client, invoice, dana_deal):
    page = _search(other_rep_client, "INV-00009")
    assert dana_deal.get_absolute_url() not in page
    assert "Nothing found" in page


def test_a_manager_finds_their_teams_deal(manager_client, invoice, dana_deal):
    assert dana_deal.get_absolute_url() in _search(manager_client, "INV-00009")


def test_an_auditor_has_no_search(auditor_client):
    # Like every seller's page: not there for an auditor (pipeline.access.require_seller).
    assert auditor_client.get(reverse("search"), {"q": "INV-1"}).status_code == 404


def test_the_search_box_is_in_the_nav(rep_client):
    assert 'id="nav-q"' in rep_client.get(reverse("search")).content.decode()


def test_search_reads_a_fixed_number_of_queries(
    rep_client, rep, dana, django_assert_max_num_queries
):
    for n in range(5):
        deal = DealFactory(rep=rep, customer=dana, title=f"Deal {n}")
        InvoiceFactory(deal=deal, amount=Decimal("100.00"), number=100 + n)
    rep_client.get(reverse("search"), {"q": "x"})  # warm the session
    # Session, user, reminders badge, then three for the search itself, whatever it finds.
    with django_assert_max_num_queries(9):
        _search(rep_client, "555 0101234")
    with django_assert_max_num_queries(9):
        _search(rep_client, "INV-00102")


def test_a_nul_byte_in_the_search_is_left_out_with_a_message(rep_client, dana_deal, dana):
    # PostgreSQL refuses a NUL in any text: searched for as typed, it was a 500
    # (found by the generated-input test on the search page).
    page = _search(rep_client, "Dana\x00 Whitfield")
    assert "Search text can&#x27;t contain control characters" in page
    assert dana.get_absolute_url() in page
