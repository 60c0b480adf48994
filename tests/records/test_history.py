"""Every change on the record (issue 20, §2): who, when, field, before, after."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.formats import date_format

from billing.models import Payment, PaymentStatus
from billing.services import payment_clear
from pipeline.changes import deal_changes, describe, history_of
from pipeline.history import acting_as, acting_via, set_acting_via
from pipeline.models import Customer, Deal, Role, User
from pipeline.services import deal_move, deal_update
from pipeline.stages import Stage
from tests.factories import DealFactory, PaymentFactory, UserFactory

VISA = "4111 1111 1111 1111"

pytestmark = pytest.mark.django_db


def _fields(change):
    return {f.name: (f.before, f.after) for f in change.fields}


def test_a_deal_edit_made_on_the_page_names_the_person_field_before_and_after(
    rep_client, rep, deal
):
    response = rep_client.post(
        f"/deals/{deal.pk}/edit/",
        {
            "title": deal.title,
            "amount": "12600.00",
            "payment_option": deal.payment_option,
            "expected_delivery_date": deal.expected_delivery_date.isoformat(),
            "next_step": deal.next_step,
            "next_step_date": deal.next_step_date.isoformat(),
            "notes": "",
            "version": deal.version,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    (change,) = deal_changes(deal)
    assert change.person == rep
    assert _fields(change) == {"amount": ("1000.00", "12600.00")}
    page = rep_client.get(f"/deals/{deal.pk}/").content.decode()
    assert "12600.00" in page and "1000.00" in page and "Amount" in page


def test_a_stage_move_made_by_update_is_recorded_too(rep, deal):
    with acting_as(rep):
        deal_move(deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="competitor")
    (change,) = deal_changes(deal)
    assert change.person == rep
    assert _fields(change)["stage"] == ("Promised", "Lost")


def test_a_change_made_by_a_task_is_the_systems(rep, deal):
    deal_update(deal_id=deal.pk, actor=rep, expected_version=deal.version, title="New title")
    (change,) = deal_changes(deal)
    assert change.person is None
    assert change.who == "Cleared (the system)"


def test_a_change_made_through_an_api_token_says_so(rep, deal):
    with acting_as(rep), acting_via("API token CRM sync"):
        deal_update(deal_id=deal.pk, actor=rep, expected_version=deal.version, title="Renamed")
    (change,) = deal_changes(deal)
    assert change.who == f"{rep} via API token CRM sync"


def test_the_token_hook_lasts_for_the_context_it_is_set_in(rep, deal):
    import contextvars

    def as_token():
        set_acting_via("API token Zapier")
        deal_update(deal_id=deal.pk, actor=rep, expected_version=deal.version, title="Zap")

    contextvars.copy_context().run(as_token)
    deal_update(deal_id=deal.pk, actor=rep, expected_version=deal.version + 1, title="Back")
    newer, older = deal_changes(deal)
    assert (older.via, newer.via) == ("API token Zapier", "")


def test_a_save_that_changes_nothing_leaves_no_row(rep, deal):
    before = Deal.history.filter(id=deal.pk).count()
    deal.save()
    assert Deal.history.filter(id=deal.pk).count() == before


def test_a_payment_cleared_by_compare_and_set_is_recorded_with_its_manager(manager, deal):
    payment = PaymentFactory(deal=deal)
    with acting_as(manager):
        payment_clear(payment_id=payment.pk, actor=manager)
    rows = Payment.history.filter(id=payment.pk, history_type="~")
    (change,) = describe(rows)
    assert _fields(change)["status"] == ("Pending", "Cleared")
    assert change.person == manager
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CLEARED


def test_a_persons_roles_and_team_changes_are_recorded(manager):
    person = UserFactory(username="newbie", role=Role.REP)
    with acting_as(manager):
        person.manager = manager
        person.save()
        person.groups.add(Group.objects.get_or_create(name=Role.MANAGER)[0])
    changes = describe(history_of(User, [person.pk]).filter(history_type="~"))
    assert _fields(changes[0])["roles"] == ("Rep", "Manager,Rep")
    assert _fields(changes[1])["manager"] == ("—", str(manager))
    assert all(c.person == manager for c in changes[:2])


def test_a_login_leaves_no_row(rep, rep_client):
    before = User.history.filter(id=rep.pk).count()
    rep_client.get("/")
    from django.contrib.auth.models import update_last_login

    update_last_login(None, rep)
    assert User.history.filter(id=rep.pk).count() == before


def test_a_card_number_typed_into_a_customer_never_reaches_the_history(rep_client, customer):
    response = rep_client.post(
        f"/customers/{customer.pk}/edit/",
        {
            "name": customer.name,
            "company": customer.company,
            "phone": customer.phone,
            "email": customer.email,
            "billing_contact": f"pays with {VISA}",
            "plans_notes": f"card {VISA}",
            "chase_by_email": "on",
        },
    )
    assert response.status_code == 302
    row = Customer.history.filter(id=customer.pk).first()
    assert "4111 1111 1111 1111" not in str(row.history_changes)
    assert "•••• 1111" in row.billing_contact and "•••• 1111" in str(row.history_changes)
    # tests/conftest.py scans every table after the test, the history tables too.


def test_money_changes_show_on_the_deal_timeline(manager_client, manager, deal):
    payment = PaymentFactory(deal=deal, amount=Decimal("200.00"))
    payment_clear(payment_id=payment.pk, actor=manager)
    page = manager_client.get(f"/deals/{payment.deal_id}/").content.decode()
    assert f"Payment #{payment.pk}" in page and "Cleared" in page


def test_a_time_in_the_history_reads_as_people_read_times(rep, deal):
    with acting_as(rep):
        deal_move(deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="competitor")
    (change,) = deal_changes(deal)
    after = _fields(change)["stage_changed_at"][1]
    deal.refresh_from_db()
    assert after == date_format(timezone.localtime(deal.stage_changed_at), "D j M Y, H:i")
    # Not ISO 8601 ("2026-12-08T00:32:00+00:00"); a "Tue" or "Thu" is fine.
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d", after) and "+00:00" not in after


def test_a_creation_is_recorded_without_reading_the_history_first(rep):
    # Only a change is compared with the row before it; an import creates many rows.
    with CaptureQueriesContext(connection) as captured:
        customer = Customer.objects.create(owner=rep, name="Bo Lind", phone="555 300 0003")
    history = Customer.history.model._meta.db_table
    touching = [q["sql"] for q in captured.captured_queries if history in q["sql"]]
    assert len(touching) == 1 and touching[0].startswith("INSERT")
    assert customer.history.get().history_type == "+"


def test_a_records_history_manager_is_built_once_and_still_reads_only_that_record(rep, deal):
    other = DealFactory(rep=rep, customer=deal.customer)
    deal_update(deal_id=deal.pk, actor=rep, expected_version=deal.version, title="Renamed")
    assert type(deal.history) is type(Deal.history) is type(other.history)
    assert {row.id for row in deal.history.all()} == {deal.pk}
    assert deal.history.count() == 2 and other.history.count() == 1
    assert Deal.history.filter(id__in=[deal.pk, other.pk]).count() == 3
