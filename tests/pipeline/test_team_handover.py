"""A leaver is deactivated and their open work goes to a teammate, in one step."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audits import services as audit_services
from pipeline import team
from pipeline.models import Customer, Deal, Reassignment
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from reminders.models import Reminder, ReminderKind, ReminderState
from tests.audits.conftest import checklist
from tests.conftest import _client_for
from tests.factories import CustomerFactory, DealFactory, ReminderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def leavers_work(leaver):
    customer = CustomerFactory(owner=leaver, name="Pat Lee")
    open_deal = DealFactory(rep=leaver, customer=customer, title="Open one")
    billed = DealFactory(
        rep=leaver,
        customer=customer,
        title="Billed one",
        stage=Stage.DEPOSIT,
        payment_option=PaymentOption.INVOICE,
    )
    audit = audit_services.wrap_up_hand_over(deal_id=billed.pk, rep=leaver, **checklist())
    closed = DealFactory(rep=leaver, title="Lost one", stage=Stage.LOST, lost_reason="price")
    reminder = ReminderFactory(
        deal=open_deal,
        owner=leaver,
        why="Call back",
        due_at=timezone.now() + timedelta(hours=1),
    )
    done = ReminderFactory(
        deal=open_deal,
        kind=ReminderKind.CHECK_IN,
        owner=leaver,
        why="Checked in",
        due_at=timezone.now() - timedelta(days=1),
        state=ReminderState.DONE,
        closed_at=timezone.now(),
    )
    return {
        "open": open_deal,
        "billed": billed,
        "audit": audit,
        "closed": closed,
        "customer": customer,
        "reminder": reminder,
        "done": done,
    }


def test_deactivating_a_leaver_hands_their_open_work_to_a_teammate(
    manager, manager_client, leaver, rep, leavers_work
):
    response = manager_client.post(
        reverse("team_deactivate", args=[leaver.pk]), {"successor": rep.pk}
    )
    assert response.status_code == 302 and response.url == reverse("team")
    leaver.refresh_from_db()
    assert not leaver.is_active
    work = leavers_work
    assert Deal.objects.get(pk=work["open"].pk).rep == rep
    assert Deal.objects.get(pk=work["billed"].pk).rep == rep
    assert Deal.objects.get(pk=work["closed"].pk).rep == leaver  # history stays theirs
    assert Customer.objects.get(pk=work["customer"].pk).owner == rep
    assert Reminder.objects.get(pk=work["reminder"].pk).owner == rep
    assert Reminder.objects.get(pk=work["done"].pk).owner == leaver
    work["audit"].refresh_from_db()
    assert work["audit"].is_open and work["audit"].deal.rep == rep
    records = Reassignment.objects.order_by("deal_id")
    assert [(r.deal_id, r.from_rep, r.to_rep, r.actor) for r in records] == [
        (work["open"].pk, leaver, rep, manager),
        (work["billed"].pk, leaver, rep, manager),
    ]
    page = manager_client.get(reverse("team")).content.decode()
    assert "2 open deals, 1 customer and 1 reminder" in page


def test_the_deals_timeline_says_who_reassigned_it_when_and_from_whom_to_whom(
    manager, manager_client, leaver, rep, leavers_work
):
    team.user_deactivate(manager=manager, leaver=leaver, successor=rep)
    page = manager_client.get(leavers_work["open"].get_absolute_url()).content.decode()
    assert "Reassigned" in page
    assert f"from {leaver} to {rep}" in page
    assert f"{leaver} left the team; {rep} takes over." in page
    with pytest.raises(TypeError):
        Reassignment.objects.first().delete()


def test_the_leaver_can_no_longer_log_in_and_their_session_stops_working(
    manager, leaver, rep, client
):
    leaver_client = _client_for(leaver)
    assert leaver_client.get("/").status_code == 200
    team.user_deactivate(manager=manager, leaver=leaver, successor=rep)
    assert leaver_client.get("/").status_code == 302
    response = client.post(reverse("login"), {"username": "leaver", "password": "pw"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_a_forged_leaver_of_another_team_is_a_404_and_changes_nothing(
    manager_client, other_rep, rep
):
    deal = DealFactory(rep=other_rep)
    response = manager_client.post(
        reverse("team_deactivate", args=[other_rep.pk]), {"successor": rep.pk}
    )
    assert response.status_code == 404
    other_rep.refresh_from_db()
    assert other_rep.is_active and Deal.objects.get(pk=deal.pk).rep == other_rep


@pytest.mark.parametrize("target", ["other_rep", "leaver", "inactive", "manager", "junk"])
def test_a_successor_outside_the_team_is_a_404_and_changes_nothing(
    request, manager_client, leaver, other_rep, teammate, target
):
    deal = DealFactory(rep=leaver)
    if target == "inactive":
        teammate.is_active = False
        teammate.save()
        chosen = teammate.pk
    elif target == "junk":
        chosen = "1 OR 1=1"
    else:
        chosen = request.getfixturevalue(target).pk
    response = manager_client.post(
        reverse("team_deactivate", args=[leaver.pk]), {"successor": chosen}
    )
    assert response.status_code == 404
    leaver.refresh_from_db()
    assert leaver.is_active and Deal.objects.get(pk=deal.pk).rep == leaver
    assert not Reassignment.objects.exists()


def test_no_successor_chosen_comes_back_with_a_message(manager_client, leaver, rep):
    response = manager_client.post(reverse("team_deactivate", args=[leaver.pk]), {})
    assert response.status_code == 422
    assert "Choose who takes over." in response.content.decode()
    leaver.refresh_from_db()
    assert leaver.is_active


def test_the_deactivation_page_offers_only_active_teammates(
    manager_client, leaver, rep, teammate, other_rep
):
    response = manager_client.get(reverse("team_deactivate", args=[leaver.pk]))
    offered = set(response.context["form"].fields["successor"].queryset)
    assert offered == {rep, teammate}


def test_the_service_refuses_a_successor_of_another_team(manager, leaver, other_rep):
    with pytest.raises(team.TeamError):
        team.user_deactivate(manager=manager, leaver=leaver, successor=other_rep)
    leaver.refresh_from_db()
    assert leaver.is_active


def test_another_manager_cannot_deactivate_this_teams_rep(other_rep, leaver, rep):
    with pytest.raises(team.TeamError):
        team.user_deactivate(manager=other_rep.manager, leaver=leaver, successor=rep)
