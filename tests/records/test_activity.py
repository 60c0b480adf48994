"""The Activity page: every recorded change a manager (their team) or an operator may see."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pipeline.history import acting_as
from pipeline.services import deal_update
from tests.factories import CustomerFactory, DealFactory

pytestmark = pytest.mark.django_db


def _edit(deal, actor, **fields):
    with acting_as(actor):
        return deal_update(deal_id=deal.pk, actor=actor, expected_version=deal.version, **fields)


def test_a_manager_sees_their_teams_changes_and_not_another_teams(
    manager_client, rep, other_rep, deal
):
    _edit(deal, rep, title="Ours renamed")
    theirs = DealFactory(rep=other_rep, title="Theirs")
    _edit(theirs, other_rep, title="Theirs renamed")
    text = manager_client.get("/activity/").content.decode()
    assert "Ours renamed" in text
    assert "Theirs renamed" not in text


def test_a_rep_or_an_auditor_gets_a_403(rep_client, auditor_client):
    assert rep_client.get("/activity/").status_code == 403
    assert auditor_client.get("/activity/").status_code == 403


def test_an_operator_sees_every_team(operator, rep, other_rep, deal):
    from tests.conftest import _client_for

    theirs = DealFactory(rep=other_rep)
    _edit(theirs, other_rep, title="Theirs renamed")
    text = _client_for(operator).get("/activity/").content.decode()
    assert "Theirs renamed" in text


def test_the_filters_narrow_by_person_type_field_and_dates(manager_client, manager, rep, deal):
    _edit(deal, rep, title="By the rep")
    deal.refresh_from_db()
    _edit(deal, manager, next_step="By the manager")
    CustomerFactory(owner=rep, name="Brand New")

    def shown(**params):
        # What a change set a field to (the deal's title also names later changes of that deal).
        page = manager_client.get("/activity/", params).content.decode()
        return " ".join(part.split("</ins>")[0] for part in page.split("<ins>")[1:]) + (
            " Brand New" if "Customer Brand New" in page else ""
        )

    assert "By the rep" in shown(person=rep.pk) and "By the manager" not in shown(person=rep.pk)
    assert "By the manager" in shown(field="next_step")
    assert "By the rep" not in shown(field="next_step")
    assert "Brand New" not in shown(type="deal") and "By the rep" in shown(type="deal")
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert "By the rep" not in shown(since=tomorrow)
    assert "By the rep" in shown(until=tomorrow)


def test_the_page_reads_a_fixed_number_of_queries_however_many_changes(
    manager_client, rep, teammate
):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert manager_client.get("/activity/").status_code == 200
        return len(queries)

    deal = DealFactory(rep=rep)
    _edit(deal, rep, title="One")
    few = count()
    for n in range(30):
        deal = DealFactory(rep=teammate if n % 2 else rep)
        _edit(deal, deal.rep, title=f"Edit {n}")
    assert count() == few
    assert count() <= 25


def test_the_pages_go_on_past_the_first(manager_client, rep):
    for n in range(30):
        _edit(DealFactory(rep=rep), rep, title=f"Edit number {n:02d}")
    first = manager_client.get("/activity/", {"type": "deal", "field": "title"}).content.decode()
    second = manager_client.get(
        "/activity/", {"type": "deal", "field": "title", "page": 2}
    ).content.decode()
    assert "Edit number 29" in first and "Edit number 00" not in first
    assert "Edit number 00" in second and "Page 2 of" in second


def test_a_reps_role_and_team_changes_are_on_their_managers_activity(manager_client, manager):
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    with acting_as(manager):
        person = UserFactory(username="joiner", first_name="Jo", role="Rep")
        person.manager = manager
        person.save()
        person.groups.add(Group.objects.get_or_create(name="Auditor")[0])
    text = manager_client.get("/activity/", {"type": "user"}).content.decode()
    assert "Auditor,Rep" in text


def test_each_change_names_what_it_is_about_in_words(manager_client, rep, deal):
    """Not "Deal #3" or "Customer #11": the deal's title and customer, the invoice's number."""
    from tests.factories import InvoiceFactory, PaymentFactory

    _edit(deal, rep, title="Espresso machine")
    deal.customer.name = "Zoe Laurent"
    deal.customer.save()
    invoice = InvoiceFactory(deal=deal)
    payment = PaymentFactory(deal=deal)
    text = manager_client.get("/activity/").content.decode()
    assert f"Deal #{deal.pk} Espresso machine — Zoe Laurent" in text
    assert "Customer Zoe Laurent" in text
    assert f"Invoice {invoice.display_number}" in text
    assert f"Payment #{payment.pk} ({payment.amount}) on deal #{deal.pk}" in text
    assert f"Deal #{deal.pk} changed" not in text
