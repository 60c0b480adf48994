"""Customers, audits, reminders and the board's totals through the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audits import services as audit_services
from audits.models import AuditState
from pipeline.models import Customer
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from reminders.models import ReminderState
from tests.audits.conftest import YES, checklist
from tests.factories import CustomerFactory, DealFactory, ReminderFactory

pytestmark = pytest.mark.django_db

NEW_CUSTOMER = {"name": "Avery Chen", "company": "Chen Dental", "phone": "+1 555 0142"}


def test_a_rep_adds_a_customer_and_a_likely_duplicate_is_asked_about(rep_api, rep):
    created = rep_api.post("/customers", NEW_CUSTOMER)
    assert created.status_code == 201, created.content
    assert Customer.objects.get().owner == rep
    twin = rep_api.post("/customers", NEW_CUSTOMER)
    assert twin.status_code == 409 and str(created.json()["id"]) in twin.json()["detail"]
    anyway = rep_api.post("/customers", NEW_CUSTOMER | {"add_anyway": True})
    assert anyway.status_code == 201
    assert Customer.objects.count() == 2


def test_a_match_the_rep_may_not_see_is_a_409_that_names_nobody(rep_api, other_rep_api):
    theirs = other_rep_api.post("/customers", NEW_CUSTOMER)
    assert theirs.status_code == 201, theirs.content
    mine = rep_api.post("/customers", NEW_CUSTOMER)
    assert mine.status_code == 409
    detail = mine.json()["detail"]
    assert "your manager decides" in detail
    assert str(theirs.json()["id"]) not in detail and NEW_CUSTOMER["name"] not in detail
    assert Customer.objects.count() == 1


def test_a_customer_without_a_phone_gets_the_forms_message(rep_api):
    response = rep_api.post("/customers", {"name": "Avery", "phone": "12"})
    assert response.status_code == 422
    assert response.json()["errors"]["phone"] == [
        "Enter a phone number the customer can be called on."
    ]


def test_customers_are_listed_read_and_edited_by_whoever_sees_them(
    rep_api, other_rep_api, manager_api, customer
):
    assert [c["id"] for c in rep_api.get("/customers").json()["items"]] == [customer.pk]
    assert other_rep_api.get("/customers").json()["items"] == []
    assert other_rep_api.get(f"/customers/{customer.pk}").status_code == 404
    assert other_rep_api.patch(f"/customers/{customer.pk}", {"company": "x"}).status_code == 404
    edited = manager_api.patch(f"/customers/{customer.pk}", {"accounting_cutoff_day": 25})
    assert edited.status_code == 200, edited.content
    customer.refresh_from_db()
    assert (customer.accounting_cutoff_day, customer.company) == (25, "Whitfield Dental")


def test_an_auditor_works_the_queue_and_records_an_outcome(auditor_api, rep_api, rep, customer):
    deal = DealFactory(
        rep=rep, customer=customer, stage=Stage.DEPOSIT, payment_option=PaymentOption.INVOICE
    )
    audit = audit_services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **checklist())
    assert rep_api.get("/audits/queue").status_code == 403
    queue = auditor_api.get("/audits/queue").json()
    assert [(a["id"], a["section"]) for a in queue] == [(audit.pk, "due_now")]
    assert auditor_api.post(f"/audits/{audit.pk}/claim").status_code == 200
    half = auditor_api.post(
        f"/audits/{audit.pk}/attempts",
        {
            "outcome": "confirmed",
            "version": queue[0]["version"] + 1,
            "answers": {"identity": "yes"},
        },
    )
    assert half.status_code == 422
    assert "answer_purchase" in half.json()["errors"]
    audit.refresh_from_db()
    done = auditor_api.post(
        f"/audits/{audit.pk}/attempts",
        {"outcome": "confirmed", "version": audit.version, "answers": YES},
    )
    assert done.status_code == 201, done.content
    assert done.json()["audit_state"] == AuditState.CONFIRMED
    deal.refresh_from_db()
    assert deal.stage == Stage.AUDIT_CONFIRMED


def test_an_auditor_never_calls_about_their_own_sale(manager):
    from pipeline.models import Role
    from tests.api.conftest import api_for
    from tests.factories import UserFactory

    seller = UserFactory(username="sells_and_audits", role=Role.AUDITOR, manager=manager)
    seller.groups.add(*UserFactory(username="tmp", role=Role.REP).groups.all())
    deal = DealFactory(rep=seller, customer=CustomerFactory(owner=seller), stage=Stage.DEPOSIT)
    audit = audit_services.wrap_up_hand_over(deal_id=deal.pk, rep=seller, **checklist())
    client = api_for(seller)
    assert client.get("/audits/queue").json() == []
    assert client.post(f"/audits/{audit.pk}/claim").status_code == 404
    assert client.post(f"/audits/{audit.pk}/attempts", {"outcome": "confirmed"}).status_code == 404


def test_reminders_are_listed_done_and_snoozed_by_their_owner_only(rep_api, other_rep_api, deal):
    first = ReminderFactory(deal=deal)
    second = ReminderFactory(deal=deal)
    assert {r["id"] for r in rep_api.get("/reminders").json()["items"]} == {first.pk, second.pk}
    assert other_rep_api.get("/reminders").json()["items"] == []
    assert other_rep_api.post(f"/reminders/{first.pk}/done").status_code == 404
    done = rep_api.post(f"/reminders/{first.pk}/done")
    assert done.status_code == 200 and done.json()["state"] == ReminderState.DONE
    assert rep_api.post(f"/reminders/{first.pk}/done").status_code == 409
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    refused = rep_api.post(f"/reminders/{second.pk}/snooze", {"until": past})
    assert refused.status_code == 422 and "until" in refused.json()["errors"]
    snoozed = rep_api.post(f"/reminders/{second.pk}/snooze", {"until": "hour"})
    assert snoozed.status_code == 200 and snoozed.json()["state"] == ReminderState.SNOOZED


def test_the_boards_totals_are_a_managers_and_count_their_team_only(
    manager_api, rep_api, other_manager_api, rep, other_rep
):
    DealFactory(rep=rep)
    DealFactory(rep=other_rep)
    assert rep_api.get("/board/totals").status_code == 403
    totals = manager_api.get("/board/totals").json()
    assert totals["count"] == 1 and totals["outstanding"] == "1000.00"
    assert {row["stage"] for row in totals["by_stage"]} >= {"promised", "deposit"}
    assert other_manager_api.get("/board/totals").json()["count"] == 1


def test_a_customer_created_elsewhere_is_invisible_to_an_outsider(other_rep_api, rep):
    theirs = CustomerFactory(owner=rep)
    assert other_rep_api.get(f"/customers/{theirs.pk}").status_code == 404
