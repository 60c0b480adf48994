import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from pipeline.models import Customer, Deal, StageEvent
from pipeline.stages import Stage
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _future(days=7) -> str:
    return (timezone.localdate() + datetime.timedelta(days=days)).isoformat()


def _deal_data(customer, **overrides) -> dict:
    data = {
        "customer": customer.pk,
        "title": "Network upgrade",
        "amount": "6400.00",
        "payment_option": "invoice",
        "expected_delivery_date": _future(20),
        "next_step": "Book the install",
        "next_step_date": _future(2),
        "notes": "",
    }
    data.update(overrides)
    return data


def test_a_rep_logs_a_deal_in_promised_with_its_first_stage_event(rep_client, rep, customer):
    response = rep_client.post("/deals/new/", _deal_data(customer))
    deal = Deal.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/deals/{deal.pk}/"
    assert deal.rep == rep and deal.stage == Stage.PROMISED
    assert deal.amount == Decimal("6400.00")
    # A new customer owes a deposit whatever the option (terms policy).
    assert deal.deposit_required is True
    assert StageEvent.objects.filter(deal=deal, to_stage=Stage.PROMISED, actor=rep).count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount", "-5", "more than zero"),
        ("amount", "0", "more than zero"),
        ("amount", "99999999999", "check for an extra zero"),
        ("amount", "12.345", "2 decimal places"),
        ("amount", "lots", "Enter the amount as a number"),
        ("next_step_date", "2001-01-01", "can&#x27;t be in the past"),
        ("next_step", "", "Write the next step: always have a reason to call back."),
        ("payment_option", "barter", "Select a valid choice"),
    ],
)
def test_bad_deal_input_comes_back_next_to_the_field_with_the_typing_kept(
    rep_client, customer, field, value, message
):
    data = _deal_data(customer, **{field: value}, title="Keep this title")
    response = rep_client.post("/deals/new/", data)
    assert response.status_code == 200
    assert message in response.text
    assert 'value="Keep this title"' in response.text
    assert f'id="id_{field}_error"' in response.text
    assert not Deal.objects.exists()


def test_a_deal_for_another_reps_customer_is_refused(rep_client, other_rep):
    foreign = CustomerFactory(owner=other_rep)
    response = rep_client.post("/deals/new/", _deal_data(foreign))
    assert "Pick one of your own customers" in response.text
    assert not Deal.objects.exists()


def test_the_terms_panel_shows_the_customers_standing(rep_client, customer):
    response = rep_client.get(
        f"/deals/terms/?customer={customer.pk}", headers={"HX-Request": "true"}
    )
    assert "New standing" in response.text
    assert "a deposit or upfront payment is required" in response.text


def test_the_terms_panel_says_nothing_about_another_reps_customer(rep_client, other_rep):
    foreign = CustomerFactory(owner=other_rep, name="Secret Customer")
    response = rep_client.get(f"/deals/terms/?customer={foreign.pk}")
    assert "Secret Customer" not in response.text


def test_a_rep_adds_a_customer_and_goes_on_to_the_deal(rep_client, rep):
    response = rep_client.post(
        "/customers/new/",
        {
            "name": "Luis Ortega",
            "company": "Ortega",
            "phone": "+1 555 0123",
            "next": "deal",
            "plans_notes": "card 4111 1111 1111 1111",
        },
    )
    customer = Customer.objects.get()
    assert response["Location"] == f"/deals/new/?customer={customer.pk}"
    assert customer.owner == rep
    assert customer.plans_notes == "card •••• 1111"
    page = rep_client.get(response["Location"]).text
    assert "Luis Ortega" in page and "New standing" in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phone", "call me", "phone number"),
        ("accounting_cutoff_day", "40", "1 to 31"),
        ("email", "not-an-email", "valid email"),
        ("name", "", "required"),
    ],
)
def test_bad_customer_input_is_explained(rep_client, field, value, message):
    data = {"name": "Kept Name", "phone": "+1 555 0100", field: value}
    response = rep_client.post("/customers/new/", data)
    assert response.status_code == 200 and message in response.text
    assert not Customer.objects.exists()


def test_a_touch_becomes_the_deals_next_step(rep_client, deal):
    response = rep_client.post(
        f"/deals/{deal.pk}/touches/",
        {
            "kind": "visit",
            "happened_at": "2026-01-05T10:00",
            "discussed": "Their expansion",
            "agreed_to": "A trial week",
            "next_step": "Call after the trial",
            "next_step_date": _future(9),
        },
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.next_step == "Call after the trial"
    assert deal.touches.get().agreed_to == "A trial week"


def test_a_touch_must_close_on_something_and_leave_a_next_step(rep_client, deal):
    response = rep_client.post(
        f"/deals/{deal.pk}/touches/",
        {
            "kind": "call",
            "happened_at": "2026-01-05T10:00",
            "discussed": "Kept words",
            "agreed_to": "",
            "next_step": "",
            "next_step_date": "2001-01-01",
        },
    )
    assert response.status_code == 422
    assert "Kept words" in response.text
    assert response.text.count("field-error") >= 3
    assert not deal.touches.exists()


def test_a_touch_over_htmx_swaps_the_deal_body(rep_client, deal):
    response = rep_client.post(
        f"/deals/{deal.pk}/touches/",
        {
            "kind": "email",
            "happened_at": "2026-01-05T10:00",
            "discussed": "Sent the quote",
            "agreed_to": "Read it tonight",
            "next_step": "Call tomorrow",
            "next_step_date": _future(1),
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="deal-body">')
    assert "Sent the quote" in response.text and "<html" not in response.text


def test_an_illegal_move_is_refused_with_a_message_and_changes_nothing(rep_client, deal):
    response = rep_client.post(
        f"/deals/{deal.pk}/move/", {"to_stage": "delivered", "version": deal.version}
    )
    assert response.status_code == 422
    assert "must reach" in response.text
    deal.refresh_from_db()
    assert deal.stage == Stage.PROMISED and deal.version == 1


def test_a_forged_stage_is_refused(rep_client, deal):
    response = rep_client.post(f"/deals/{deal.pk}/move/", {"to_stage": "paid", "version": 1})
    assert response.status_code == 422 and "Select a valid choice" in response.text


def test_losing_a_deal_needs_a_reason(rep_client, deal):
    response = rep_client.post(f"/deals/{deal.pk}/move/", {"to_stage": "lost", "version": 1})
    assert response.status_code == 422 and "Say why the deal was lost" in response.text
    response = rep_client.post(
        f"/deals/{deal.pk}/move/", {"to_stage": "lost", "lost_reason": "competitor", "version": 1}
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.stage == Stage.LOST and deal.lost_reason == "competitor"


def test_a_move_from_a_stale_page_is_refused_and_shows_the_current_state(rep_client, deal):
    rep_client.post(
        f"/deals/{deal.pk}/move/", {"to_stage": "lost", "lost_reason": "other", "version": 1}
    )
    response = rep_client.post(
        f"/deals/{deal.pk}/move/", {"to_stage": "lost", "lost_reason": "other", "version": 1}
    )
    assert response.status_code == 409
    assert "Someone else changed this deal" in response.text
    assert deal.stage_events.count() == 2


def test_an_edit_from_a_stale_form_is_refused_and_keeps_the_typing(rep_client, deal):
    data = {
        "title": "My new title",
        "amount": "1500.00",
        "version": 1,
        "expected_delivery_date": _future(10),
        "next_step": "Call",
        "next_step_date": _future(3),
        "notes": "",
    }
    assert rep_client.post(f"/deals/{deal.pk}/edit/", data).status_code == 302
    data["title"] = "A second edit from an old page"
    response = rep_client.post(f"/deals/{deal.pk}/edit/", data)
    assert response.status_code == 409
    assert "Someone else changed this deal" in response.text
    assert 'value="A second edit from an old page"' in response.text
    deal.refresh_from_db()
    assert deal.title == "My new title" and deal.amount == Decimal("1500.00")


def test_deal_list_filters_by_stage_and_searches_customers(rep_client, rep):
    from tests.factories import DealFactory

    a = DealFactory(rep=rep, customer__name="Alpha Dental")
    b = DealFactory(rep=rep, customer__name="Beta Bakery", stage=Stage.DEPOSIT)
    text = rep_client.get("/deals/?stage=deposit").text
    assert f"#{b.pk} " in text and f"#{a.pk} " not in text
    text = rep_client.get("/deals/?q=alpha").text
    assert f"#{a.pk} " in text and f"#{b.pk} " not in text
    partial = rep_client.get("/deals/?q=beta", headers={"HX-Request": "true"}).text
    assert partial.lstrip().startswith('<div id="results">') and "Beta Bakery" in partial


def test_a_deal_cannot_be_edited_below_the_money_already_received(rep_client, manager, deal):
    from billing import services as billing

    billing.payment_record(
        deal_id=deal.pk,
        recorded_by=deal.rep,
        kind="deposit",
        method="check",
        amount=Decimal("600.00"),
    )
    deal.refresh_from_db()
    data = {
        "title": deal.title,
        "amount": "500.00",
        "version": deal.version,
        "expected_delivery_date": _future(10),
        "next_step": "Call",
        "next_step_date": _future(3),
        "notes": "",
    }
    response = rep_client.post(f"/deals/{deal.pk}/edit/", data)
    assert "can&#x27;t be less than the 600.00 already received" in response.text
    deal.refresh_from_db()
    assert deal.amount == Decimal("1000.00")


def test_writing_off_needs_a_manager_and_a_reason(rep_client, manager_client, rep):
    from tests.factories import DealFactory

    deal = DealFactory(rep=rep, stage=Stage.DELIVERED)
    response = rep_client.post(
        f"/deals/{deal.pk}/move/", {"to_stage": "written_off", "reason": "gone", "version": 1}
    )
    assert response.status_code == 422 and "Select a valid choice" in response.text
    response = manager_client.post(
        f"/deals/{deal.pk}/move/", {"to_stage": "written_off", "version": 1}
    )
    assert response.status_code == 422 and "Say why the money is written off" in response.text
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DELIVERED
    response = manager_client.post(
        f"/deals/{deal.pk}/move/",
        {"to_stage": "written_off", "reason": "Customer went bankrupt", "version": 1},
    )
    assert response.status_code == 302
    assert Deal.objects.get(pk=deal.pk).stage == Stage.WRITTEN_OFF
    event = StageEvent.objects.filter(deal=deal).first()
    assert event.reason == "Customer went bankrupt"
