"""The API's deals and touches: the deal pages' rules, as JSON."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from api.models import IdempotentResponse
from pipeline.changes import deal_changes
from pipeline.models import Deal
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from tests.events import announced
from tests.factories import CustomerFactory, DealFactory, ReminderFactory

pytestmark = pytest.mark.django_db


def _promise(customer, **overrides) -> dict:
    soon = timezone.localdate() + timedelta(days=7)
    data = {
        "customer": customer.pk,
        "title": "New website",
        "amount": "2500.00",
        "payment_option": PaymentOption.ON_FILE,
        "expected_delivery_date": soon.isoformat(),
        "next_step": "Send the mock-ups",
        "next_step_date": soon.isoformat(),
    }
    return data | overrides


def test_a_rep_logs_a_promise_and_it_is_announced(rep_api, rep, customer):
    with announced() as sent:
        response = rep_api.post("/deals", _promise(customer))
    assert response.status_code == 201, response.content
    body = response.json()
    deal = Deal.objects.get(pk=body["id"])
    assert (deal.rep, deal.amount, deal.stage) == (rep, Decimal("2500.00"), Stage.PROMISED)
    assert body["amount"] == "2500.00" and body["url"] == f"/deals/{deal.pk}/"
    assert sent == [(deal.pk, rep.pk)]


def test_the_same_idempotency_key_twice_makes_one_deal(rep_api, customer):
    headers = {"Idempotency-Key": "promise-7f3a"}
    first = rep_api.post("/deals", _promise(customer), headers=headers)
    second = rep_api.post("/deals", _promise(customer), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Deal.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422_and_makes_nothing(rep_api, customer):
    headers = {"Idempotency-Key": "promise-7f3a"}
    rep_api.post("/deals", _promise(customer), headers=headers)
    other = rep_api.post("/deals", _promise(customer, title="Other"), headers=headers)
    assert other.status_code == 422
    assert other["Content-Type"] == "application/problem+json"
    assert "Idempotency-Key" in other.json()["errors"]
    assert Deal.objects.count() == 1


def test_a_key_belongs_to_its_token(rep_api, rep, customer):
    from tests.api.conftest import api_for

    headers = {"Idempotency-Key": "same"}
    rep_api.post("/deals", _promise(customer), headers=headers)
    assert api_for(rep).post("/deals", _promise(customer), headers=headers).status_code == 201
    assert Deal.objects.count() == 2
    assert IdempotentResponse.objects.count() == 2


def test_bad_input_is_a_problem_with_the_forms_messages(rep_api, customer):
    yesterday = timezone.localdate() - timedelta(days=1)
    response = rep_api.post(
        "/deals",
        _promise(customer, amount="12,50", next_step="", next_step_date=yesterday.isoformat()),
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert problem["errors"]["amount"] == ["Enter the amount as a number, e.g. 1250.00."]
    assert problem["errors"]["next_step"] == [
        "Write the next step: always have a reason to call back."
    ]
    assert problem["errors"]["next_step_date"] == ["The next step date can't be in the past."]
    assert not Deal.objects.exists()


def test_a_promise_for_another_reps_customer_is_refused(rep_api, other_rep):
    theirs = CustomerFactory(owner=other_rep)
    response = rep_api.post("/deals", _promise(theirs))
    assert response.status_code == 422
    assert response.json()["errors"]["customer"] == ["Pick one of your own customers."]


def test_a_json_body_of_the_wrong_shape_is_a_422_problem(rep_api):
    response = rep_api.post("/deals", {"customer": "not a number", "title": ["a", "list"]})
    assert response.status_code == 422
    assert set(response.json()["errors"]) >= {"customer", "title"}


def test_the_deal_list_is_what_the_person_sees(rep_api, manager_api, auditor_api, rep, other_rep):
    mine = DealFactory(rep=rep)
    DealFactory(rep=other_rep)
    assert [d["id"] for d in rep_api.get("/deals").json()["items"]] == [mine.pk]
    assert [d["id"] for d in manager_api.get("/deals").json()["items"]] == [mine.pk]
    assert auditor_api.get("/deals").status_code == 404


def test_the_deal_list_pages_with_a_cursor(rep_api, rep):
    now = timezone.now()
    deals = [DealFactory(rep=rep, promised_at=now - timedelta(hours=i)) for i in range(7)]
    seen, cursor = [], ""
    while True:
        body = rep_api.get("/deals", {"limit": 3, "cursor": cursor}).json()
        seen += [d["id"] for d in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [d.pk for d in reversed(deals)]  # the board's default: oldest promise first


def test_the_deal_list_takes_the_boards_filters(manager_api, rep, teammate):
    big = DealFactory(rep=rep, amount=Decimal("9000.00"), stage=Stage.DEPOSIT)
    DealFactory(rep=teammate)
    body = manager_api.get("/deals", {"rep": rep.pk, "stage": "deposit", "sort": "-amount"}).json()
    assert [d["id"] for d in body["items"]] == [big.pk]
    odd = manager_api.get("/deals", {"stage": "nonsense"}).json()
    assert odd["notes"] and len(odd["items"]) == 2


def test_a_forged_cursor_means_the_first_page(rep_api, rep):
    deal = DealFactory(rep=rep)
    for cursor in ["garbage", "WzEsMl0", "eyJhIjoxfQ"]:
        assert [d["id"] for d in rep_api.get("/deals", {"cursor": cursor}).json()["items"]] == [
            deal.pk
        ]


def test_the_deal_list_costs_at_most_eight_queries(
    rep_api, manager_api, rep, django_assert_max_num_queries
):
    for _ in range(40):
        deal = DealFactory(rep=rep)
        ReminderFactory(deal=deal)
    for client in (rep_api, manager_api):
        client.get("/deals")  # the token's last use is written once a minute
        with django_assert_max_num_queries(8):
            response = client.get("/deals", {"limit": 50, "sort": "next_reminder"})
        assert response.status_code == 200 and len(response.json()["items"]) == 40


def test_updating_terms_checks_the_version(rep_api, deal):
    response = rep_api.patch(f"/deals/{deal.pk}", {"version": deal.version, "title": "Bigger"})
    assert response.status_code == 200, response.content
    assert response.json()["title"] == "Bigger" and response.json()["version"] == 2
    stale = rep_api.patch(f"/deals/{deal.pk}", {"version": 1, "title": "Stale"})
    assert stale.status_code == 409
    deal.refresh_from_db()
    assert deal.title == "Bigger"


def test_moving_a_deal_goes_through_the_transitions_table(rep_api, deal):
    refused = rep_api.post(f"/deals/{deal.pk}/move", {"to_stage": "delivered", "version": 1})
    assert refused.status_code == 422
    assert "to_stage" in refused.json()["errors"]
    lost = rep_api.post(f"/deals/{deal.pk}/move", {"to_stage": "lost", "version": 1})
    assert lost.status_code == 422
    assert lost.json()["errors"]["lost_reason"] == ["Say why the deal was lost."]
    with announced() as sent:
        moved = rep_api.post(
            f"/deals/{deal.pk}/move",
            {"to_stage": "lost", "lost_reason": "competitor", "version": 1},
        )
    assert moved.status_code == 200, moved.content
    assert moved.json()["stage"] == "lost"
    assert sent == [(deal.pk, deal.rep_id)]


def test_touches_are_listed_and_recorded(rep_api, deal):
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    missing = rep_api.post(f"/deals/{deal.pk}/touches", {"kind": "call"})
    assert missing.status_code == 422
    assert missing.json()["errors"]["agreed_to"] == [
        "Write what the customer agreed to: always close on something, however small."
    ]
    response = rep_api.post(
        f"/deals/{deal.pk}/touches",
        {
            "kind": "call",
            "happened_at": timezone.now().isoformat(),
            "discussed": "Scope",
            "agreed_to": "A second call",
            "next_step": "Call Thursday",
            "next_step_date": tomorrow,
        },
    )
    assert response.status_code == 201, response.content
    assert [t["id"] for t in rep_api.get(f"/deals/{deal.pk}/touches").json()] == [
        response.json()["id"]
    ]
    assert rep_api.get(f"/deals/{deal.pk}").json()["next_step"] == "Call Thursday"


def test_past_the_rate_limit_a_429_says_when_to_retry(rep_api, deal, settings):
    settings.CLEARED_API_RATE = 3
    statuses = [rep_api.get(f"/deals/{deal.pk}").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = rep_api.get(f"/deals/{deal.pk}")
    assert refused["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused["Retry-After"]) <= 61


def test_a_change_through_the_api_is_on_the_record_as_the_person_via_their_token(
    rep_api, rep, deal
):
    response = rep_api.patch(f"/deals/{deal.pk}", {"version": deal.version, "title": "Bigger"})
    assert response.status_code == 200, response.content
    change = next(c for c in deal_changes(deal) if any(f.name == "title" for f in c.fields))
    assert (change.person, change.via) == (rep, "API token test")
    assert change.who == f"{rep} via API token test"


def test_a_key_reused_after_the_window_is_a_new_request(rep_api, customer, settings):
    settings.CLEARED_API_IDEMPOTENCY_HOURS = 24
    headers = {"Idempotency-Key": "promise-old"}
    assert rep_api.post("/deals", _promise(customer), headers=headers).status_code == 201
    IdempotentResponse.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = rep_api.post("/deals", _promise(customer), headers=headers)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Deal.objects.count() == 2
    assert IdempotentResponse.objects.count() == 1


def test_the_hourly_job_forgets_only_answers_past_the_window(rep_api, customer, settings):
    from api.tasks import prune_idempotency

    settings.CLEARED_API_IDEMPOTENCY_HOURS = 24
    rep_api.post("/deals", _promise(customer), headers={"Idempotency-Key": "old"})
    IdempotentResponse.objects.update(created_at=timezone.now() - timedelta(hours=25))
    rep_api.post("/deals", _promise(customer, title="Fresh"), headers={"Idempotency-Key": "new"})
    assert prune_idempotency.apply().get() == 1
    assert IdempotentResponse.objects.count() == 1
    replay = rep_api.post(
        "/deals", _promise(customer, title="Fresh"), headers={"Idempotency-Key": "new"}
    )
    assert replay["Idempotent-Replayed"] == "true"
