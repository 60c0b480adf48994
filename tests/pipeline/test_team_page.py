"""The Team page: a manager's reps, and who may see it."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import CommissionRate
from pipeline.models import Role
from pipeline.stages import Stage
from tests.conftest import _client_for
from tests.factories import DealFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_manager_sees_each_rep_of_their_team_with_open_deals_and_rate(
    manager_client, rep, teammate, other_rep
):
    DealFactory(rep=rep)
    DealFactory(rep=rep, stage=Stage.DELIVERED)
    DealFactory(rep=rep, stage=Stage.LOST, lost_reason="price")
    CommissionRate.objects.create(rep=teammate, rate=Decimal("0.0500"), effective_from="2020-01-01")
    response = manager_client.get(reverse("team"))
    assert response.status_code == 200
    rows = {member.username: member for member, _ in response.context["rows"]}
    assert set(rows) == {"rep", "rep2"}
    assert rows["rep"].open_deals == 2
    html = response.content.decode()
    assert rep.email in html and "Active" in html
    assert "5.00 %" in html and "10.00 %" in html
    assert other_rep.username not in html


def test_the_team_page_is_in_a_managers_nav_and_not_a_reps(manager_client, rep_client):
    assert 'href="/team/"' in manager_client.get("/").content.decode()
    assert 'href="/team/"' not in rep_client.get("/").content.decode()


def test_the_team_page_costs_the_same_queries_for_two_reps_or_ten(manager, manager_client, rep):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert manager_client.get(reverse("team")).status_code == 200
        return len(queries)

    UserFactory(username="second", role=Role.REP, manager=manager)
    two = count()
    for n in range(8):
        member = UserFactory(username=f"more{n}", role=Role.REP, manager=manager)
        DealFactory(rep=member)
        CommissionRate.objects.create(
            rep=member, rate=Decimal("0.0700"), effective_from="2020-01-01"
        )
    assert count() == two
    assert two <= 8


@pytest.mark.parametrize("persona", ["rep_client", "auditor_client", "other_rep_client"])
def test_reps_and_auditors_cannot_open_the_team_page(request, persona):
    client = request.getfixturevalue(persona)
    assert client.get(reverse("team")).status_code == 403
    assert client.post(reverse("team_invite"), {"email": "x@example.com"}).status_code == 403


def test_a_rep_cannot_open_a_teammates_rate_or_deactivation_page(rep_client, teammate, rep):
    assert rep_client.get(reverse("team_deactivate", args=[teammate.pk])).status_code == 403
    assert rep_client.get(reverse("billing:commission_rate", args=[teammate.pk])).status_code == 403


def test_another_teams_manager_sees_none_of_this_team(other_manager, rep):
    client = _client_for(other_manager)
    response = client.get(reverse("team"))
    assert [member.username for member, _ in response.context["rows"]] == ["other_rep"]
    assert rep.get_full_name() not in response.content.decode()
    assert client.get(reverse("team_deactivate", args=[rep.pk])).status_code == 404
    assert client.get(reverse("billing:commission_rate", args=[rep.pk])).status_code == 404


def test_a_superuser_sees_every_rep(rep, other_rep):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    response = _client_for(root).get(reverse("team"))
    assert {member.username for member, _ in response.context["rows"]} == {"rep", "other_rep"}
