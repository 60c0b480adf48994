"""The access matrix, through the API: a token sees exactly what its person sees
in the browser (tests/pipeline/test_access.py, test_access_module.py).

Each persona's token is asked for every deal and customer, by id and in the
lists, and the same persona's browser session is asked for the same pages: the
answers must be the table below, and the same in both.
"""

import pytest

from pipeline.models import Deal
from pipeline.stages import Stage
from tests.api.conftest import api_for
from tests.conftest import _client_for
from tests.factories import DealFactory, UserFactory

pytestmark = pytest.mark.django_db

# Who sees which deal (and its customer): the rule of pipeline/access.py, written out.
SEES = {
    "rep": {"rep"},
    "teammate": {"teammate"},
    "manager": {"rep", "teammate", "manager"},
    "other_rep": {"other_rep"},
    "other_manager": {"other_rep"},
    "auditor": set(),
    "superuser": {"rep", "teammate", "manager", "other_rep"},
}


@pytest.fixture
def world(rep, teammate, manager, other_rep, auditor):
    people = {
        "rep": rep,
        "teammate": teammate,
        "manager": manager,
        "other_rep": other_rep,
        "other_manager": other_rep.manager,
        "auditor": auditor,
        "superuser": UserFactory(username="root", is_superuser=True),
    }
    deals = {
        owner: DealFactory(rep=people[owner])
        for owner in ("rep", "teammate", "manager", "other_rep")
    }
    return people, deals


@pytest.mark.parametrize("persona", sorted(SEES))
def test_a_token_sees_the_deals_its_person_sees_in_the_browser(world, persona):
    people, deals = world
    api, browser = api_for(people[persona]), _client_for(people[persona])
    for owner, deal in deals.items():
        expected = 200 if owner in SEES[persona] else 404
        assert api.get(f"/deals/{deal.pk}").status_code == expected, (persona, owner)
        assert browser.get(f"/deals/{deal.pk}/").status_code == expected, (persona, owner)
        assert api.get(f"/deals/{deal.pk}/touches").status_code == expected
        customer = deal.customer_id
        assert api.get(f"/customers/{customer}").status_code == expected, (persona, owner)
        assert browser.get(f"/customers/{customer}/").status_code == expected
    listed = api.get("/deals", {"limit": 200})
    if persona == "auditor":
        assert listed.status_code == browser.get("/deals/").status_code == 404
    else:
        assert {d["id"] for d in listed.json()["items"]} == {
            deals[owner].pk for owner in SEES[persona]
        }
        customers = {c["id"] for c in api.get("/customers").json()["items"]}
        assert customers == {deals[owner].customer_id for owner in SEES[persona]}


@pytest.mark.parametrize("persona", sorted(SEES))
def test_a_forged_write_through_the_api_is_a_404_and_changes_nothing(world, persona):
    people, deals = world
    api = api_for(people[persona])
    for owner, deal in deals.items():
        if owner in SEES[persona]:
            continue
        writes = [
            api.post(
                f"/deals/{deal.pk}/move", {"to_stage": "lost", "lost_reason": "other", "version": 1}
            ),
            api.patch(f"/deals/{deal.pk}", {"version": 1, "title": "stolen"}),
            api.post(f"/deals/{deal.pk}/touches", {"kind": "call"}),
            api.post(
                f"/deals/{deal.pk}/payments", {"kind": "final", "method": "check", "amount": "1"}
            ),
            api.post(
                f"/deals/{deal.pk}/invoices",
                {"amount": "1", "issue_date": "2030-01-01", "terms_days": 1},
            ),
            api.patch(f"/customers/{deal.customer_id}", {"company": "stolen"}),
        ]
        assert [w.status_code for w in writes] == [404] * len(writes), (persona, owner)
        fresh = Deal.objects.get(pk=deal.pk)
        assert (fresh.stage, fresh.title, fresh.version) == (Stage.PROMISED, deal.title, 1)
        assert not fresh.touches.exists() and not fresh.payments.exists()
        assert fresh.customer.company == deal.customer.company


def test_a_forged_id_that_does_not_exist_is_a_404_for_everyone(world):
    people, _ = world
    for user in people.values():
        api = api_for(user)
        for path in ("/deals/987654321", "/customers/987654321", "/deals/987654321/touches"):
            response = api.get(path)
            assert response.status_code in (404,), (user, path)
            assert response["Content-Type"] == "application/problem+json"
