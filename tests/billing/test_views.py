"""Billing pages: who may see and do what, forms that keep input, card numbers refused."""

from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.models import Payment, PaymentMethod, PaymentStatus
from pipeline.models import Deal
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from tests.billing.money import bounce, clear, record
from tests.conftest import _client_for
from tests.factories import CustomerFactory, DealFactory, UserFactory

pytestmark = pytest.mark.django_db

CARD = "4242 4242 4242 4242"


def _payment_form(**overrides):
    data = {"kind": "deposit", "method": "check", "amount": "200.00", "reference": "Check 1001"}
    data.update(overrides)
    return data


# --- The deal page's money panel -------------------------------------------


def test_the_deal_page_shows_the_money_panel_and_the_ledger(rep_client, deal, rep, manager):
    clear(record(deal, rep, "200.00"), manager)
    response = rep_client.get(deal.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="money-panel"' in html
    assert "Outstanding" in html and "$800.00" in html
    assert "Check 1001" in html
    assert ">Mark cleared</button>" not in html  # a rep never sees the clear button


def test_a_manager_sees_clear_and_bounce_on_a_pending_payment(manager_client, deal, rep):
    record(deal, rep, "200.00")
    html = manager_client.get(deal.get_absolute_url()).content.decode()
    assert ">Mark cleared</button>" in html and "Bounce…" in html


def test_the_money_panel_does_not_grow_queries_with_the_ledger(
    rep_client, deal, rep, manager, django_assert_max_num_queries
):
    for _ in range(3):
        clear(record(deal, rep, "100.00", kind="instalment"), manager)
    with django_assert_max_num_queries(40) as few:
        rep_client.get(deal.get_absolute_url())
    for _ in range(5):
        record(deal, rep, "10.00", kind="instalment")
    with django_assert_max_num_queries(len(few.captured_queries)):
        rep_client.get(deal.get_absolute_url())


# --- Recording a payment -------------------------------------------


def test_a_rep_records_a_deposit_and_the_deal_moves_to_deposit(rep_client, deal):
    response = rep_client.post(f"/billing/deals/{deal.pk}/payments/new/", _payment_form())
    assert response.status_code == 302 and response.url == deal.get_absolute_url()
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PENDING
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DEPOSIT


def test_an_overpayment_comes_back_next_to_the_amount_with_the_input_kept(rep_client, deal):
    response = rep_client.post(
        f"/billing/deals/{deal.pk}/payments/new/",
        _payment_form(amount="1500.00", reference="Check 777"),
    )
    assert response.status_code == 422
    form = response.context["form"]
    assert "overpayment" in form.errors["amount"][0]
    html = response.content.decode()
    assert 'value="1500.00"' in html and 'value="Check 777"' in html
    assert not Payment.objects.exists()


def test_a_negative_amount_is_refused_next_to_the_field(rep_client, deal):
    response = rep_client.post(
        f"/billing/deals/{deal.pk}/payments/new/", _payment_form(amount="-5")
    )
    assert response.status_code == 422
    assert response.context["form"].errors["amount"] == ["The amount must be more than zero."]


def test_htmx_gets_only_the_form_and_a_client_redirect_on_success(rep_client, deal):
    url = f"/billing/deals/{deal.pk}/payments/new/"
    partial = rep_client.get(url, headers={"HX-Request": "true"})
    assert b"<html" not in partial.content and b'id="money-action"' in partial.content
    bad = rep_client.post(url, _payment_form(amount=""), headers={"HX-Request": "true"})
    assert bad.status_code == 422 and b"<html" not in bad.content
    done = rep_client.post(url, _payment_form(), headers={"HX-Request": "true"})
    assert done.headers["HX-Redirect"] == deal.get_absolute_url()


def test_a_payment_on_a_lost_deal_is_refused_with_a_message(rep_client, rep):
    deal = DealFactory(rep=rep, stage=Stage.LOST, lost_reason="other")
    response = rep_client.post(f"/billing/deals/{deal.pk}/payments/new/", _payment_form())
    assert response.status_code == 422
    assert "lost" in response.context["form"].non_field_errors()[0]


# --- Access -------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/billing/deals/{deal}/payments/new/",
        "/billing/deals/{deal}/methods/new/",
        "/billing/deals/{deal}/invoices/new/",
        "/billing/deals/{deal}/plan/new/",
    ],
)
def test_a_rep_cannot_see_or_record_money_on_another_reps_deal(other_rep_client, deal, path):
    url = path.format(deal=deal.pk)
    assert other_rep_client.get(url).status_code == 404
    assert other_rep_client.post(url, _payment_form()).status_code == 404
    assert not Payment.objects.exists()


def test_a_rep_cannot_clear_a_payment(rep_client, deal, rep):
    payment = record(deal, rep)
    response = rep_client.post(f"/billing/payments/{payment.pk}/status/", {"to_status": "cleared"})
    assert response.status_code == 403
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING


def test_another_teams_manager_cannot_find_the_payment(deal, rep, other_rep):
    payment = record(deal, rep)
    client = _client_for(other_rep.manager)
    response = client.post(f"/billing/payments/{payment.pk}/status/", {"to_status": "cleared"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/billing/payments/",
        "/billing/invoices/",
        "/billing/commission/",
        "/billing/deals/{deal}/payments/new/",
        "/billing/payments/{payment}/status/",
    ],
)
def test_an_auditor_has_no_access_to_money(auditor_client, deal, rep, path):
    payment = record(deal, rep)
    response = auditor_client.get(path.format(deal=deal.pk, payment=payment.pk))
    assert response.status_code == 404


def test_a_visitor_must_log_in(client, deal):
    response = client.get("/billing/payments/")
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_a_rep_cannot_waive_a_deposit_or_allow_invoicing(rep_client, deal, customer):
    assert (
        rep_client.post(f"/billing/deals/{deal.pk}/waive-deposit/", {"reason": "x"}).status_code
        == 403
    )
    url = f"/billing/customers/{customer.pk}/allow-invoicing/"
    assert rep_client.post(url, {"reason": "x"}).status_code == 403


# --- Clearing and bouncing from the page -------------------------------------------


def test_a_manager_clears_a_check_from_the_deal_page(manager_client, delivered_deal, rep):
    payment = record(delivered_deal, rep, "1000.00", kind="final")
    response = manager_client.post(
        f"/billing/payments/{payment.pk}/status/", {"to_status": "cleared"}, follow=True
    )
    assert response.status_code == 200
    assert "The deal is in Payment cleared" in response.content.decode()


def test_clearing_an_already_cleared_payment_says_so(manager_client, delivered_deal, rep, manager):
    payment = clear(record(delivered_deal, rep, "1000.00", kind="final"), manager)
    response = manager_client.post(
        f"/billing/payments/{payment.pk}/status/", {"to_status": "cleared"}, follow=True
    )
    assert "already cleared" in response.content.decode()
    assert payment.events.count() == 2


def test_a_bounce_without_a_reason_comes_back_next_to_the_field(manager_client, deal, rep):
    payment = record(deal, rep)
    response = manager_client.post(
        f"/billing/payments/{payment.pk}/status/", {"to_status": "bounced", "reason": ""}
    )
    assert response.status_code == 422
    assert response.context["form"].errors["reason"]


# --- Methods on file: never a full number -------------------------------------------


@pytest.mark.parametrize("field", ["processor_token", "brand", "last4"])
def test_a_full_card_number_is_refused_in_every_field_and_never_stored(
    manager_client, rep, customer, field, caplog
):
    deal = DealFactory(rep=rep, customer=customer, payment_option=PaymentOption.ON_FILE)
    data = {"kind": "card", "processor_token": "tok_1Nx", "brand": "Visa", "last4": "4242"}
    data[field] = CARD
    response = manager_client.post(f"/billing/deals/{deal.pk}/methods/new/", data)
    assert response.status_code == 422
    errors = response.context["form"].errors[field][0]
    assert "full card or account number" in errors or "last 4" in errors
    html = response.content.decode()
    assert CARD not in html and CARD.replace(" ", "") not in html  # not echoed back
    assert not PaymentMethod.objects.exists()
    assert CARD not in caplog.text


def test_a_rep_can_no_longer_type_a_card_in(rep_client, rep, customer):
    deal = DealFactory(rep=rep, customer=customer, payment_option=PaymentOption.ON_FILE)
    data = {"kind": "card", "processor_token": "tok_1Nx", "brand": "Visa", "last4": "4242"}
    assert rep_client.get(f"/billing/deals/{deal.pk}/methods/new/").status_code == 403
    assert rep_client.post(f"/billing/deals/{deal.pk}/methods/new/", data).status_code == 403
    assert not PaymentMethod.objects.exists()
    assert "(typed in)" not in rep_client.get(deal.get_absolute_url()).content.decode()


def test_only_the_last_4_digits_are_accepted(manager_client, rep, customer):
    deal = DealFactory(rep=rep, customer=customer, payment_option=PaymentOption.ON_FILE)
    data = {"kind": "card", "processor_token": "tok_1Nx", "brand": "Visa", "last4": "42424"}
    response = manager_client.post(f"/billing/deals/{deal.pk}/methods/new/", data)
    assert response.status_code == 422
    data["last4"] = "4242"
    assert manager_client.post(f"/billing/deals/{deal.pk}/methods/new/", data).status_code == 302
    method = PaymentMethod.objects.get()
    assert (method.processor_token, method.brand, method.last4) == ("tok_1Nx", "Visa", "4242")
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DEPOSIT


def test_a_card_number_in_a_payment_reference_is_refused(rep_client, deal):
    response = rep_client.post(
        f"/billing/deals/{deal.pk}/payments/new/", _payment_form(reference=CARD)
    )
    assert response.status_code == 422
    assert CARD not in response.content.decode()
    assert not Payment.objects.exists()


# --- Invoices, lists, commission -------------------------------------------


def test_issuing_an_invoice_after_the_cutoff_warns(rep_client, delivered_deal, customer):
    customer.accounting_cutoff_day = 1
    customer.save()
    today = timezone.localdate()
    response = rep_client.post(
        f"/billing/deals/{delivered_deal.pk}/invoices/new/",
        {"amount": "1000.00", "issue_date": today.replace(day=2).isoformat(), "terms_days": "30"},
        follow=True,
    )
    assert "past the customer&#x27;s cut-off (day 1)" in response.content.decode()


def test_the_printable_invoice_shows_due_date_and_cutoff(rep_client, delivered_deal, rep):
    invoice = services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep)
    response = rep_client.get(f"/billing/invoices/{invoice.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert invoice.display_number in html and "Net 30 days" in html
    assert "@media print" not in html  # print CSS is a file, linked
    assert "invoice.css" in html


def test_another_rep_cannot_open_the_invoice(other_rep_client, delivered_deal, rep):
    invoice = services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep)
    assert other_rep_client.get(f"/billing/invoices/{invoice.pk}/").status_code == 404


def _many_deals_with_money(rep, manager, count=6):
    customer = CustomerFactory(owner=rep)
    for _ in range(count):
        deal = DealFactory(
            rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED
        )
        invoice = services.invoice_issue(deal_id=deal.pk, issued_by=rep)
        clear(record(deal, rep, "300.00", kind="instalment", invoice=invoice), manager)
        bounce(record(deal, rep, "100.00", kind="instalment", invoice=invoice), manager)
        record(deal, rep, "50.00", kind="instalment", invoice=invoice)


@pytest.mark.parametrize(
    "path",
    ["/billing/payments/?status=all", "/billing/invoices/?state=all", "/billing/commission/"],
)
def test_list_pages_take_a_fixed_number_of_queries(
    manager_client, rep, teammate, manager, path, django_assert_max_num_queries
):
    _many_deals_with_money(rep, manager)
    _many_deals_with_money(teammate, manager)
    with django_assert_max_num_queries(14):
        response = manager_client.get(path)
    assert response.status_code == 200


def test_the_payments_page_defaults_to_what_waits_to_clear(manager_client, rep, manager):
    _many_deals_with_money(rep, manager, count=2)
    response = manager_client.get("/billing/payments/")
    assert response.context["page"].paginator.count == 2
    assert all(p.status == PaymentStatus.PENDING for p in response.context["page"])


def test_a_rep_sees_only_their_own_payments(rep_client, rep, teammate, manager):
    _many_deals_with_money(teammate, manager, count=2)
    response = rep_client.get("/billing/payments/?status=all")
    assert response.context["page"].paginator.count == 0


def test_the_manager_sees_commission_per_rep(manager_client, rep, teammate, manager):
    _many_deals_with_money(rep, manager, count=2)
    response = manager_client.get("/billing/commission/")
    rows = {row["rep"]: row["figures"] for row in response.context["rows"]}
    assert rows[rep].cleared == Decimal("600.00") and rows[rep].earned == Decimal("60.00")
    assert rows[teammate].earned == Decimal("0.00")


def test_a_rep_sees_their_own_commission_only(rep_client, rep, teammate, manager):
    _many_deals_with_money(teammate, manager, count=1)
    response = rep_client.get("/billing/commission/")
    assert [row["rep"] for row in response.context["rows"]] == [rep]


def test_the_customer_page_shows_history_and_exceptions(manager_client, customer, rep, manager):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    bounce(clear(record(deal, rep, "1000.00", kind="final"), manager), manager)
    services.invoicing_allow(customer_id=customer.pk, manager=manager, reason="Bank error")
    html = manager_client.get(customer.get_absolute_url()).content.decode()
    assert "Payment history" in html and "1 payment bounced recently." in html
    assert "Bank error" in html


def test_the_deal_form_shows_the_deposit_rule_and_an_exception(
    manager_client, manager, customer, rep
):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    bounce(clear(record(deal, rep, "1000.00", kind="final"), manager), manager)
    services.invoicing_allow(customer_id=customer.pk, manager=manager, reason="Bank error")
    html = manager_client.get(f"/deals/terms/?customer={customer.pk}").content.decode()
    assert "20% of the amount" in html and "Bank error" in html


def test_the_admin_shows_payments_read_only_and_never_deletes(deal, rep):
    payment = record(deal, rep)
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = _client_for(admin)
    assert client.get("/admin/billing/payment/").status_code == 200
    page = client.get(f"/admin/billing/payment/{payment.pk}/change/")
    assert page.status_code == 200 and b"deletelink" not in page.content
    assert (
        client.post(f"/admin/billing/payment/{payment.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Payment.objects.filter(pk=payment.pk).exists()
