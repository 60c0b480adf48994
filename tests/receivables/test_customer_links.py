"""The customer's own link (receivables/links.py): signed, expiring, revocable, public,
rate-limited, and the customer's two answers recorded on the deal."""

import datetime
import time
from decimal import Decimal
from unittest import mock

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from billing.models import Payment
from pipeline.models import Touch, TouchKind
from pipeline.stages import Stage
from receivables import links
from receivables.models import CustomerLink, CustomerResponse, ResponseKind
from tests.factories import CustomerFactory, DealFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.date.today


@pytest.fixture(autouse=True)
def _pay_to(settings):
    settings.CLEARED_SITE_URL = "https://pay.example.com"
    settings.CLEARED_PAY_TO_NAME = "Bright Smiles Supply Ltd"
    settings.CLEARED_PAY_TO_IBAN = "GB33BUKB20201555555555"
    settings.CLEARED_PAY_TO_BIC = "BUKBGB22"
    settings.CLEARED_LINK_RATE_LIMIT = 20


@pytest.fixture
def billed(rep, customer):
    return DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=False,
        stage=Stage.DELIVERED,
        title="Chairs",
        amount=Decimal("2000.00"),
    )


@pytest.fixture
def invoice(billed):
    return InvoiceFactory(deal=billed, amount=Decimal("1234.50"), due_date=TODAY())


@pytest.fixture
def link(invoice, rep, customer):
    return links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)


def _path(link) -> str:
    return links.customer_link_path(link)


def _state() -> tuple:
    """Everything an answer could write."""
    return (
        CustomerResponse.objects.count(),
        Touch.objects.count(),
        list(CustomerLink.objects.order_by("pk").values_list("last_used_at", flat=True)),
    )


# --- the link itself --------------------------------------------------------------


def test_the_url_is_absolute_on_the_site_and_signed_with_the_links_key(link):
    url = links.customer_link_url(link)
    assert url.startswith("https://pay.example.com/billing/pay/")
    token = url.rsplit("/", 2)[-2]
    assert signing.loads(token, salt=links.SALT) == link.key.hex


def test_a_new_link_expires_after_the_configured_days(settings, invoice, rep, customer):
    settings.CLEARED_LINK_DAYS = 14
    link = links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)
    assert link.expires_at - link.created_at == datetime.timedelta(days=14)
    assert link.is_live()


def test_a_link_to_another_customers_invoice_is_refused(invoice, rep):
    stranger = CustomerFactory(owner=rep)
    with pytest.raises(links.BillingError):
        links.customer_link_create(customer=stranger, invoice=invoice, created_by=rep)


def test_the_customer_opens_the_invoice_without_logging_in(client, link):
    response = client.get(_path(link))
    assert response.status_code == 200
    body = response.content.decode()
    assert "INV-" in body and "$1,234.50" in body  # Decimal, formatted like the app
    assert "GB33BUKB20201555555555" in body and "Bright Smiles Supply Ltd" in body
    assert "I&#x27;ve paid" in body or "I've paid" in body


def test_the_page_sets_no_cookie_and_is_never_indexed_cached_or_referred(client, link):
    response = client.get(_path(link))
    assert response.cookies == {}
    assert "Set-Cookie" not in response.headers
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    assert '<meta name="robots" content="noindex, nofollow">' in response.content.decode()


def test_the_strict_csp_holds_on_the_page(client, link):
    response = client.get(_path(link))
    policy = response["Content-Security-Policy"]
    assert "'unsafe-inline'" not in policy
    body = response.content.decode()
    assert "<script>" not in body and " style=" not in body and " onclick=" not in body


def test_the_page_shows_nothing_else_of_the_business(client, link, rep, other_rep, teammate):
    other = CustomerFactory(owner=other_rep, name="Zed Other Customer")
    InvoiceFactory(deal=DealFactory(rep=other_rep, customer=other), amount=Decimal("999.00"))
    body = client.get(_path(link)).content.decode()
    assert "Zed Other Customer" not in body and "$999.00" not in body
    assert "Not paid yet" not in body and "Log out" not in body and "/deals/" not in body
    assert teammate.username not in body and other_rep.username not in body
    assert rep.get_full_name() in body  # the one contact: the invoice's rep


def test_opening_it_records_when_it_was_last_used(client, link):
    assert link.last_used_at is None
    client.get(_path(link))
    link.refresh_from_db()
    assert link.last_used_at is not None


def test_the_page_reads_a_fixed_number_of_queries(
    client, link, rep, customer, billed, django_assert_max_num_queries
):
    for _ in range(5):  # more invoices and answers do not mean more queries
        InvoiceFactory(deal=billed, amount=Decimal("10.00"), due_date=TODAY())
    client.post(_path(link), {"kind": "paid", "reference": "R"})
    statement = links.customer_link_create(customer=customer, created_by=rep)
    for page in (link, statement):
        # Six, and one for the statement's credit notes (voided invoices, issue 20).
        with django_assert_max_num_queries(7):
            assert client.get(_path(page)).status_code == 200


# --- refused tokens: 404, nothing changes -------------------------------------------


def _tampered(link) -> str:
    token = links.customer_link_token(link)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return f"/billing/pay/{flipped}/"


def _forged(link) -> str:
    return f"/billing/pay/{signing.dumps(link.key.hex, salt='another-salt')}/"


def _other_key(link) -> str:
    return f"/billing/pay/{signing.dumps('0' * 32, salt=links.SALT)}/"


@pytest.mark.parametrize(
    "make_path", [_tampered, _forged, _other_key, lambda link: "/billing/pay/garbage/"]
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_or_tampered_token_answers_404_and_changes_nothing(
    client, link, make_path, method
):
    before = _state()
    data = {"kind": "paid", "reference": "TR-1"}
    response = getattr(client, method)(make_path(link), data)
    assert response.status_code == 404
    assert "This link does not work" in response.content.decode()
    assert "Set-Cookie" not in response.headers
    assert _state() == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_expired_link_answers_404_and_changes_nothing(client, link, method):
    CustomerLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    before = _state()
    response = getattr(client, method)(_path(link), {"kind": "paid", "reference": "TR-1"})
    assert response.status_code == 404
    assert _state() == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_revoked_link_answers_404_and_changes_nothing(client, link, rep, method):
    links.customer_link_revoke(link_id=link.pk, actor=rep)
    before = _state()
    response = getattr(client, method)(_path(link), {"kind": "paid", "reference": "TR-1"})
    assert response.status_code == 404
    assert _state() == before


# --- the customer's answers ------------------------------------------------------------


def test_ive_paid_is_recorded_on_the_deal_as_the_customers_touch(client, link, invoice, rep):
    response = client.post(_path(link), {"kind": "paid", "reference": "Transfer 88-1"})
    assert response.status_code == 302
    assert response["Location"].endswith("?done=paid")
    answer = CustomerResponse.objects.get()
    assert (answer.invoice, answer.kind, answer.reference) == (invoice, "paid", "Transfer 88-1")
    touch = Touch.objects.get(deal=invoice.deal, kind=TouchKind.CUSTOMER_LINK)
    assert touch.author == rep
    assert touch.discussed.startswith("From the customer, through their payment link")
    assert "Transfer 88-1" in touch.discussed
    assert "check that the money came in" in touch.agreed_to
    assert touch.next_step_date == TODAY()
    thanks = client.get(response["Location"]).content.decode()
    assert "we have your reference" in thanks


def test_a_card_number_as_the_reference_is_refused_and_never_stored(client, link):
    before = _state()
    response = client.post(_path(link), {"kind": "paid", "reference": "4111 1111 1111 1111"})
    assert response.status_code == 422
    body = response.content.decode()
    assert "4111 1111 1111 1111" not in body
    assert 'class="field-error"' in body
    assert _state()[:2] == before[:2]


def test_a_promise_is_recorded_and_the_next_step_is_the_day_after(client, link, invoice):
    day = TODAY() + datetime.timedelta(days=10)
    response = client.post(_path(link), {"kind": "promise", "promised_for": day.isoformat()})
    assert response.status_code == 302
    answer = CustomerResponse.objects.get()
    assert (answer.kind, answer.promised_for, answer.reference) == ("promise", day, "")
    touch = Touch.objects.get(kind=TouchKind.CUSTOMER_LINK)
    assert f"promises to pay {invoice.display_number}" in touch.discussed
    assert touch.next_step_date == day + datetime.timedelta(days=1)
    invoice.deal.refresh_from_db()
    assert invoice.deal.next_step_date == day + datetime.timedelta(days=1)


@pytest.mark.parametrize(
    ("days", "message"),
    [(-1, "That date has passed"), (61, "Please pick a day by")],
)
def test_a_promise_in_the_past_or_too_far_ahead_comes_back_with_the_message(
    client, link, days, message
):
    before = _state()
    day = (TODAY() + datetime.timedelta(days=days)).isoformat()
    response = client.post(_path(link), {"kind": "promise", "promised_for": day})
    assert response.status_code == 422
    body = response.content.decode()
    assert message in body
    assert f'value="{day}"' in body  # what was typed is kept
    assert _state()[:2] == before[:2]


def test_a_promise_for_today_and_for_the_last_allowed_day_is_taken(client, link):
    for days in (0, 60):
        day = (TODAY() + datetime.timedelta(days=days)).isoformat()
        assert client.post(_path(link), {"kind": "promise", "promised_for": day}).status_code == 302
    assert CustomerResponse.objects.count() == 2


def test_the_same_answer_twice_is_recorded_once(client, link):
    for _ in range(2):
        client.post(_path(link), {"kind": "paid", "reference": "TR-7"})
    assert CustomerResponse.objects.count() == 1
    assert Touch.objects.filter(kind=TouchKind.CUSTOMER_LINK).count() == 1


def test_an_unknown_answer_is_refused_and_writes_nothing(client, link):
    before = _state()
    assert client.post(_path(link), {"kind": "refund"}).status_code == 400
    assert _state()[:2] == before[:2]


def test_a_paid_invoice_offers_no_answers(client, link, invoice, billed):
    PaymentFactory(deal=billed, invoice=invoice, amount=invoice.amount, status="cleared")
    body = client.get(_path(link)).content.decode()
    assert "Paid" in body and 'name="kind"' not in body
    response = client.post(_path(link), {"kind": "paid", "reference": "TR-9"})
    assert response.status_code == 422
    assert "Nothing is owed" in response.content.decode()
    assert not CustomerResponse.objects.exists()


def test_a_statement_answer_covers_each_open_invoice_and_touches_each_deal_once(
    client, rep, customer
):
    first = DealFactory(rep=rep, customer=customer, deposit_required=False)
    second = DealFactory(rep=rep, customer=customer, deposit_required=False)
    a = InvoiceFactory(deal=first, amount=Decimal("100.00"), due_date=TODAY())
    b = InvoiceFactory(deal=first, amount=Decimal("200.00"), due_date=TODAY())
    c = InvoiceFactory(deal=second, amount=Decimal("300.00"), due_date=TODAY())
    link = links.customer_link_create(customer=customer, created_by=rep)
    body = client.get(_path(link)).content.decode()
    assert "$600.00" in body
    client.post(_path(link), {"kind": "paid", "reference": "ALL"})
    assert set(CustomerResponse.objects.values_list("invoice", flat=True)) == {a.pk, b.pk, c.pk}
    assert Touch.objects.filter(kind=TouchKind.CUSTOMER_LINK, deal=first).count() == 1
    assert Touch.objects.filter(kind=TouchKind.CUSTOMER_LINK, deal=second).count() == 1


def test_a_reps_statement_link_never_shows_a_colleagues_deal(client, rep, teammate, customer):
    InvoiceFactory(deal=DealFactory(rep=rep, customer=customer), amount=Decimal("111.00"))
    InvoiceFactory(deal=DealFactory(rep=teammate, customer=customer), amount=Decimal("777.00"))
    link = links.customer_link_create(customer=customer, created_by=rep)
    body = client.get(_path(link)).content.decode()
    assert "$111.00" in body and "$777.00" not in body


# --- rate limit ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _one_rate_window(monkeypatch):
    """Every request of a test counts in the same window, even one that runs across
    the moment a new window starts (the counts would start again and the test fail)."""
    monkeypatch.setattr(links, "_window_slot", lambda window: 1)


def test_the_page_is_rate_limited_per_link_and_per_address(settings, link, invoice, rep, customer):
    settings.CLEARED_LINK_RATE_LIMIT = 3
    other_link = links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)
    here = Client(REMOTE_ADDR="10.0.0.1")
    for _ in range(3):
        assert here.get(_path(link)).status_code == 200
    limited = here.get(_path(link))
    assert limited.status_code == 429
    assert limited["Retry-After"] == "600"
    assert "Please wait a few minutes" in limited.content.decode()
    # This address is spent, whichever link it tries (guessing is limited too)...
    assert here.get(_path(other_link)).status_code == 429
    assert here.get("/billing/pay/guess/").status_code == 429
    # ...and so is this link, from wherever it is opened.
    assert Client(REMOTE_ADDR="10.0.0.2").get(_path(link)).status_code == 429
    assert Client(REMOTE_ADDR="10.0.0.3").get(_path(other_link)).status_code == 200


def test_a_link_signed_again_later_counts_as_the_same_link(settings, link):
    """The signature carries the second it was made: the invoice email and a later
    chase show one link under two URLs, and both count against it."""
    settings.CLEARED_LINK_RATE_LIMIT = 2
    first = _path(link)
    with mock.patch("django.core.signing.time.time", return_value=time.time() + 5):
        later = _path(link)
    assert first != later
    assert Client(REMOTE_ADDR="10.0.0.1").get(first).status_code == 200
    assert Client(REMOTE_ADDR="10.0.0.2").get(later).status_code == 200
    assert Client(REMOTE_ADDR="10.0.0.3").get(first).status_code == 429


def test_a_limited_answer_writes_nothing(settings, link):
    settings.CLEARED_LINK_RATE_LIMIT = 1
    client = Client()
    client.get(_path(link))
    before = _state()
    assert client.post(_path(link), {"kind": "paid", "reference": "X"}).status_code == 429
    assert _state() == before


# --- escaping -------------------------------------------------------------------------------


def test_a_customer_named_script_is_text_on_their_link(client, rep):
    evil = CustomerFactory(owner=rep, name="<script>alert(1)</script>", company="")
    deal = DealFactory(rep=rep, customer=evil, title="<b>bold</b>", deposit_required=False)
    invoice = InvoiceFactory(deal=deal, amount=Decimal("50.00"), due_date=TODAY())
    for link in (
        links.customer_link_create(customer=evil, invoice=invoice, created_by=rep),
        links.customer_link_create(customer=evil, created_by=rep),
    ):
        body = client.get(_path(link)).content.decode()
        assert "<script>alert(1)</script>" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "<b>bold</b>" not in body


def test_the_customers_answer_with_markup_is_text_on_the_deal_page(
    client, rep_client, link, billed
):
    client.post(_path(link), {"kind": "paid", "reference": "<img src=x>"})
    body = rep_client.get(billed.get_absolute_url()).content.decode()
    assert "<img src=x>" not in body
    assert "&lt;img src=x&gt;" in body


# --- the staff's side ---------------------------------------------------------------------------


def test_a_rep_makes_a_link_from_the_deal_page_and_sees_it(rep_client, invoice, customer, billed):
    page = rep_client.get(billed.get_absolute_url()).content.decode()
    assert 'id="customer-links"' in page
    response = rep_client.post(
        f"/billing/customers/{customer.pk}/links/new/", {"invoice": invoice.pk, "back": "deal"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"{billed.get_absolute_url()}#customer-links"
    link = CustomerLink.objects.get()
    assert link.invoice == invoice
    page = rep_client.get(billed.get_absolute_url()).content.decode()
    # The signed address carries the second it was signed: its link part is stable.
    assert links.customer_link_url(link).rsplit(":", 2)[0] in page


def test_a_rep_makes_a_statement_link_from_the_customer_page(rep_client, customer):
    response = rep_client.post(f"/billing/customers/{customer.pk}/links/new/", {"invoice": ""})
    assert response.status_code == 302
    assert CustomerLink.objects.get().invoice is None


def test_another_reps_customer_or_invoice_gets_no_link(other_rep_client, customer, invoice):
    url = f"/billing/customers/{customer.pk}/links/new/"
    assert other_rep_client.post(url, {"invoice": ""}).status_code == 404
    assert not CustomerLink.objects.exists()


def test_a_rep_cannot_link_a_colleagues_invoice_of_a_shared_customer(
    rep_client, teammate, customer
):
    theirs = InvoiceFactory(deal=DealFactory(rep=teammate, customer=customer))
    rep_client.post(f"/billing/customers/{customer.pk}/links/new/", {"invoice": theirs.pk})
    assert not CustomerLink.objects.exists()


def test_revoking_a_link_makes_it_404_at_once(rep_client, client, link):
    assert client.get(_path(link)).status_code == 200
    response = rep_client.post(f"/billing/links/{link.pk}/revoke/")
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is not None and link.revoked_by.username == "rep"
    assert client.get(_path(link)).status_code == 404


def test_another_rep_cannot_revoke_the_link(other_rep_client, link):
    assert other_rep_client.post(f"/billing/links/{link.pk}/revoke/").status_code == 404
    link.refresh_from_db()
    assert link.revoked_at is None


def test_revoke_takes_only_a_post(rep_client, link):
    assert rep_client.get(f"/billing/links/{link.pk}/revoke/").status_code == 405


def test_the_panel_shows_the_customers_answers(client, rep_client, link, customer):
    day = TODAY() + datetime.timedelta(days=5)
    client.post(_path(link), {"kind": "promise", "promised_for": day.isoformat()})
    page = rep_client.get(customer.get_absolute_url()).content.decode()
    assert "Promises to pay on" in page and "not a payment" in page


def test_the_deal_page_with_links_reads_a_bounded_number_of_queries(
    rep_client, link, billed, django_assert_max_num_queries
):
    rep_client.get(billed.get_absolute_url())
    with django_assert_max_num_queries(60):
        assert rep_client.get(billed.get_absolute_url()).status_code == 200


def test_a_response_is_append_only(client, link):
    client.post(_path(link), {"kind": "paid", "reference": "A"})
    answer = CustomerResponse.objects.get()
    with pytest.raises(TypeError):
        answer.save()
    with pytest.raises(TypeError):
        CustomerResponse.objects.update(reference="B")
    assert answer.kind == ResponseKind.PAID
    assert not Payment.objects.exists()  # an answer is not money: no payment was written


def test_a_rep_never_sees_nor_revokes_a_colleagues_links_of_a_shared_customer(
    rep_client, teammate, customer
):
    theirs = InvoiceFactory(deal=DealFactory(rep=teammate, customer=customer))
    invoice_link = links.customer_link_create(
        customer=customer, invoice=theirs, created_by=teammate
    )
    statement_link = links.customer_link_create(customer=customer, created_by=teammate)
    page = rep_client.get(customer.get_absolute_url()).content.decode()
    for link in (invoice_link, statement_link):
        assert links.customer_link_path(link) not in page
        assert rep_client.post(f"/billing/links/{link.pk}/revoke/").status_code == 404
        link.refresh_from_db()
        assert link.revoked_at is None


def test_the_manager_sees_and_revokes_the_teams_statement_link(manager_client, rep, customer):
    link = links.customer_link_create(customer=customer, created_by=rep)
    page = manager_client.get(customer.get_absolute_url()).content.decode()
    assert links.customer_link_url(link) in page
    assert manager_client.post(f"/billing/links/{link.pk}/revoke/").status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is not None


def test_an_email_reuses_a_live_link_and_makes_a_new_one_when_it_runs_out(
    link, invoice, rep, customer
):
    again = links.customer_link_for_email(customer=customer, invoice=invoice, created_by=rep)
    assert again == link
    statement = links.customer_link_for_email(customer=customer, created_by=rep)
    assert statement != link and statement.invoice is None
    CustomerLink.objects.filter(pk=link.pk).update(
        expires_at=timezone.now() + datetime.timedelta(days=2)
    )
    fresh = links.customer_link_for_email(customer=customer, invoice=invoice, created_by=rep)
    assert fresh not in (link, statement) and fresh.is_live()
    links.customer_link_revoke(link_id=fresh.pk, actor=rep)
    newest = links.customer_link_for_email(customer=customer, invoice=invoice, created_by=rep)
    assert newest not in (link, fresh)
