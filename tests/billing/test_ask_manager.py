""" "Ask my manager" (issue 13): a refusal a manager can lift — invoicing a slow
payer, a deposit waiver — is asked from where it happens, decided once from the
manager's reminder, and the rep is told; the deal goes on from where it was."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.models import ExceptionKind, ExceptionRequest, RequestState, TermsException
from pipeline.models import Customer, Deal
from pipeline.services import deal_update
from pipeline.stages import IllegalMove, Stage
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_scan
from tests.conftest import _client_for
from tests.factories import CustomerFactory, DealFactory, UserFactory

pytestmark = pytest.mark.django_db


def _future(days: int) -> str:
    return (timezone.localdate() + datetime.timedelta(days=days)).isoformat()


@pytest.fixture
def slow_customer(rep):
    customer = CustomerFactory(owner=rep, name="Slow Sam", phone="555 300 0001")
    Customer.objects.filter(pk=customer.pk).update(
        standing="slow", standing_reason="Pays 21 days late on average."
    )
    customer.refresh_from_db()
    return customer


def _deal_data(customer, **overrides) -> dict:
    data = {
        "customer": customer.pk,
        "title": "Annual support",
        "amount": "4800.00",
        "payment_option": "invoice",
        "expected_delivery_date": _future(20),
        "next_step": "Send the contract",
        "next_step_date": _future(2),
        "notes": "Wants net 30",
    }
    data.update(overrides)
    return data


def _deal_fields(customer) -> dict:
    return {
        "customer": customer,
        "title": "Annual support",
        "amount": Decimal("4800.00"),
        "expected_delivery_date": timezone.localdate() + datetime.timedelta(days=20),
        "next_step": "Send the contract",
        "next_step_date": timezone.localdate() + datetime.timedelta(days=2),
    }


# --- the services -------------------------------------------------------------------


def test_asking_logs_the_deal_as_an_invoice_with_a_deposit_and_holds_its_invoicing(
    rep, slow_customer
):
    ask = services.invoicing_ask(
        rep=rep,
        reason="Pays late but always pays",
        payment_option="invoice",
        **_deal_fields(slow_customer),
    )
    deal = ask.deal
    assert (deal.stage, deal.payment_option, deal.deposit_required) == (
        Stage.PROMISED,
        "invoice",
        True,
    )
    assert (ask.kind, ask.state, ask.rep, ask.reason) == (
        ExceptionKind.ALLOW_INVOICING,
        RequestState.ASKED,
        rep,
        "Pays late but always pays",
    )
    # Past the audit, the invoice still waits for the manager.
    Deal.objects.filter(pk=deal.pk).update(stage=Stage.AUDIT_CONFIRMED)
    with pytest.raises(services.BillingError, match="waits for your manager's decision"):
        services.invoice_issue(deal_id=deal.pk, issued_by=rep)


def test_approving_invoicing_allows_this_deal_only(rep, manager, slow_customer):
    ask = services.invoicing_ask(
        rep=rep, reason="Big account", payment_option="invoice", **_deal_fields(slow_customer)
    )
    decided = services.exception_request_decide(request_id=ask.pk, manager=manager, approve=True)
    assert decided.state == RequestState.APPROVED and decided.decided_by == manager
    exception = decided.exception
    assert (exception.kind, exception.deal_id) == (ExceptionKind.ALLOW_INVOICING, ask.deal_id)
    assert "Asked by" in exception.reason and "Big account" in exception.reason
    Deal.objects.filter(pk=ask.deal_id).update(stage=Stage.AUDIT_CONFIRMED)
    invoice = services.invoice_issue(deal_id=ask.deal_id, issued_by=rep)
    assert invoice.amount == Decimal("4800.00")
    # The customer as such is still not invoiceable: the exception is this deal's.
    slow_customer.refresh_from_db()
    assert slow_customer.invoicing_exception == ""


def test_a_request_is_decided_once(rep, manager, slow_customer):
    ask = services.invoicing_ask(
        rep=rep, reason="Why not", payment_option="invoice", **_deal_fields(slow_customer)
    )
    services.exception_request_decide(request_id=ask.pk, manager=manager, approve=False)
    with pytest.raises(services.AlreadyDecided, match="declined this already"):
        services.exception_request_decide(request_id=ask.pk, manager=manager, approve=True)
    ask.refresh_from_db()
    assert ask.state == RequestState.DECLINED and ask.exception is None
    assert not TermsException.objects.exists()


def test_only_the_reps_own_manager_decides(rep, other_rep, slow_customer):
    ask = services.invoicing_ask(
        rep=rep, reason="Why not", payment_option="invoice", **_deal_fields(slow_customer)
    )
    with pytest.raises(services.NotAllowed):
        services.exception_request_decide(
            request_id=ask.pk, manager=other_rep.manager, approve=True
        )
    with pytest.raises(services.NotAllowed):
        services.exception_request_decide(request_id=ask.pk, manager=rep, approve=True)
    assert ExceptionRequest.objects.get().state == RequestState.ASKED


def test_a_rep_without_a_manager_cannot_ask(slow_customer):
    loner = UserFactory(username="loner", role="Rep")
    with pytest.raises(services.BillingError, match="no manager"):
        services.invoicing_ask(
            rep=loner, reason="x", payment_option="invoice", **_deal_fields(slow_customer)
        )
    assert not Deal.objects.exists()


def test_an_approved_deposit_waiver_waives_it_through_the_billing_service(rep, manager, deal):
    ask = services.deposit_waiver_ask(deal_id=deal.pk, rep=rep, reason="Trusted for years")
    with pytest.raises(services.BillingError, match="asked already"):
        services.deposit_waiver_ask(deal_id=deal.pk, rep=rep, reason="Again")
    services.exception_request_decide(request_id=ask.pk, manager=manager, approve=True, note="OK")
    deal.refresh_from_db()
    assert deal.deposit_required is False
    assert TermsException.objects.get(deal=deal).kind == ExceptionKind.WAIVE_DEPOSIT


def test_a_waiver_the_deal_outgrew_is_not_approved_and_stays_asked(rep, manager, deal):
    ask = services.deposit_waiver_ask(deal_id=deal.pk, rep=rep, reason="Trusted")
    Deal.objects.filter(pk=deal.pk).update(stage=Stage.DEPOSIT)
    with pytest.raises(services.BillingError, match="deposit question is settled"):
        services.exception_request_decide(request_id=ask.pk, manager=manager, approve=True)
    ask.refresh_from_db()
    assert ask.state == RequestState.ASKED  # rolled back with the refused waiver


# --- the reminders (rules in reminders/rules/billing.py) --------------------------------


def test_the_manager_is_reminded_with_the_reason_and_the_rep_is_told_the_decision(
    rep, manager, slow_customer
):
    ask = services.invoicing_ask(
        rep=rep,
        reason="Pays late but always pays",
        payment_option="invoice",
        **_deal_fields(slow_customer),
    )
    reminders_scan(deal_ids=[ask.deal_id])
    asked = Reminder.objects.get(kind=ReminderKind.EXCEPTION_ASKED)
    assert asked.owner == manager and asked.occurrence == f"x{ask.pk}"
    assert asked.state == ReminderState.DUE
    assert "asks you to allow invoicing this slow payer" in asked.why
    assert "Pays late but always pays" in asked.why
    reminders_scan(deal_ids=[ask.deal_id])  # never twice
    assert Reminder.objects.filter(kind=ReminderKind.EXCEPTION_ASKED).count() == 1

    services.exception_request_decide(
        request_id=ask.pk, manager=manager, approve=False, note="Not this quarter"
    )
    reminders_scan(deal_ids=[ask.deal_id])
    asked.refresh_from_db()
    assert asked.state == ReminderState.RESOLVED
    assert asked.resolution == "Decided: declined." and asked.resolved_by == manager
    told = Reminder.objects.get(kind=ReminderKind.EXCEPTION_DECIDED)
    assert told.owner == rep and told.state == ReminderState.DUE
    assert "declined to allow invoicing this slow payer" in told.why
    assert "Not this quarter" in told.why and "change the payment option" in told.why


# --- the views ----------------------------------------------------------------------


def test_the_deal_forms_refusal_offers_ask_my_manager(rep_client, slow_customer):
    response = rep_client.post("/deals/new/", _deal_data(slow_customer))
    html = response.text
    assert "invoicing needs a manager&#x27;s exception" in html
    assert 'id="ask-manager"' in html
    assert 'formaction="/billing/deals/ask-invoicing/"' in html
    assert not Deal.objects.exists()


def test_a_good_customers_refusal_offers_no_manager(rep_client, customer):
    response = rep_client.post("/deals/new/", _deal_data(customer, payment_option="barter"))
    assert 'id="ask-manager"' not in response.text


def test_asking_from_the_deal_form_logs_the_deal_as_typed(rep_client, rep, slow_customer):
    data = {**_deal_data(slow_customer), "ask_reason": "Pays late but always pays"}
    response = rep_client.post("/billing/deals/ask-invoicing/", data)
    deal = Deal.objects.get()
    assert response.status_code == 302 and response["Location"] == deal.get_absolute_url()
    assert (deal.title, deal.notes, deal.next_step) == (
        "Annual support",
        "Wants net 30",
        "Send the contract",
    )
    assert ExceptionRequest.objects.get().deal == deal
    page = rep_client.get(deal.get_absolute_url()).text
    assert "waits for your manager&#x27;s decision" in page
    assert "Issue an invoice" not in page


def test_asking_without_a_reason_comes_back_in_the_deal_form(rep_client, slow_customer):
    response = rep_client.post("/billing/deals/ask-invoicing/", _deal_data(slow_customer))
    assert response.status_code == 422
    assert 'id="id_ask_reason_error"' in response.text
    assert 'value="Annual support"' in response.text and "Wants net 30" in response.text
    assert not Deal.objects.exists()


def test_the_manager_decides_from_the_reminder_panel(
    rep, manager, manager_client, rep_client, slow_customer
):
    ask = services.invoicing_ask(
        rep=rep, reason="Pays late", payment_option="invoice", **_deal_fields(slow_customer)
    )
    reminders_scan(deal_ids=[ask.deal_id])
    panel = manager_client.get("/reminders/panel/").text
    assert f'action="/billing/exception-requests/{ask.pk}/decide/"' in panel
    assert 'value="approve"' in panel and 'value="decline"' in panel
    # The rep's own panel has no buttons for it (not theirs to decide).
    assert "exception-requests" not in rep_client.get("/reminders/panel/").text

    response = manager_client.post(
        f"/billing/exception-requests/{ask.pk}/decide/",
        {"decision": "approve", "note": "", "next": "/reminders/panel/"},
    )
    assert response.status_code == 302 and response["Location"] == "/"
    ask.refresh_from_db()
    assert ask.state == RequestState.APPROVED
    again = manager_client.post(
        f"/billing/exception-requests/{ask.pk}/decide/", {"decision": "decline"}, follow=True
    )
    assert "approved this already" in again.text
    ask.refresh_from_db()
    assert ask.state == RequestState.APPROVED


@pytest.mark.parametrize("who", ["rep", "other_manager", "teammate"])
def test_a_forged_decision_is_a_404_and_decides_nothing(
    who, rep, teammate, other_rep, slow_customer
):
    ask = services.invoicing_ask(
        rep=rep, reason="Pays late", payment_option="invoice", **_deal_fields(slow_customer)
    )
    user = {"rep": rep, "other_manager": other_rep.manager, "teammate": teammate}[who]
    response = _client_for(user).post(
        f"/billing/exception-requests/{ask.pk}/decide/", {"decision": "approve"}
    )
    assert response.status_code == 404
    ask.refresh_from_db()
    assert ask.state == RequestState.ASKED


def test_a_decision_on_an_unknown_request_is_a_404(manager_client):
    response = manager_client.post("/billing/exception-requests/999999/decide/", {"decision": "x"})
    assert response.status_code == 404


def test_a_rep_asks_for_a_deposit_waiver_from_the_money_panel(rep_client, rep, deal):
    page = rep_client.get(deal.get_absolute_url()).text
    assert "Ask my manager to waive the deposit" in page
    response = rep_client.post(
        f"/billing/deals/{deal.pk}/ask-waiver/", {"ask_reason": "Customer of ten years"}
    )
    assert response.status_code == 302
    ask = ExceptionRequest.objects.get()
    assert (ask.kind, ask.deal, ask.reason) == (
        ExceptionKind.WAIVE_DEPOSIT,
        deal,
        "Customer of ten years",
    )
    page = rep_client.get(deal.get_absolute_url()).text
    assert "Ask my manager to waive the deposit" not in page
    assert "Customer of ten years" in page


def test_a_rep_cannot_ask_about_another_reps_deal(other_rep_client, deal):
    response = other_rep_client.post(
        f"/billing/deals/{deal.pk}/ask-waiver/", {"ask_reason": "mine now"}
    )
    assert response.status_code == 404
    assert not ExceptionRequest.objects.exists()


def test_after_a_decline_the_rep_changes_the_payment_option_and_goes_on(
    rep, rep_client, manager, slow_customer
):
    ask = services.invoicing_ask(
        rep=rep, reason="Pays late", payment_option="invoice", **_deal_fields(slow_customer)
    )
    services.exception_request_decide(request_id=ask.pk, manager=manager, approve=False)
    deal = ask.deal
    deal.refresh_from_db()
    edit = rep_client.get(f"/deals/{deal.pk}/edit/").text
    assert 'name="payment_option" value="on_file"' in edit
    data = {
        "title": deal.title,
        "amount": "4800.00",
        "expected_delivery_date": deal.expected_delivery_date.isoformat(),
        "next_step": deal.next_step,
        "next_step_date": deal.next_step_date.isoformat(),
        "notes": deal.notes,
        "payment_option": "on_file",
        "version": deal.version,
    }
    response = rep_client.post(f"/deals/{deal.pk}/edit/", data)
    assert response.status_code == 302
    deal.refresh_from_db()
    assert (deal.payment_option, deal.deposit_required, deal.title) == (
        "on_file",
        True,
        "Annual support",
    )


def test_the_payment_option_is_agreed_again_only_in_promised_and_within_the_terms(
    rep, slow_customer
):
    deal = DealFactory(rep=rep, customer=slow_customer, payment_option="on_file")
    with pytest.raises(IllegalMove, match="invoicing needs a manager's exception"):
        deal_update(
            deal_id=deal.pk, actor=rep, expected_version=deal.version, payment_option="invoice"
        )
    Deal.objects.filter(pk=deal.pk).update(stage=Stage.DEPOSIT)
    with pytest.raises(IllegalMove, match="payment option is settled"):
        deal_update(
            deal_id=deal.pk, actor=rep, expected_version=deal.version, payment_option="upfront"
        )
    deal.refresh_from_db()
    assert deal.payment_option == "on_file"
