"""History that a handover cannot rewrite (issue 20, section 4): a leaver's audit
outcomes, promised money and DSO stay theirs after their deals are handed over;
nothing new is logged in the name of someone who left; the Team page lists any
work still left with an inactive person and hands it over."""

import importlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from audits import services as audit_services
from audits.models import Audit, CallScript, Outcome
from audits.selectors import audit_report
from billing.reports import team_month_figures
from pipeline import services, team
from pipeline.models import Customer, Deal, User
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from tests.audits.conftest import YES, checklist
from tests.factories import CustomerFactory, DealFactory, UserFactory

pytestmark = pytest.mark.django_db


def _billed(rep, **kwargs):
    return DealFactory(rep=rep, stage=Stage.DEPOSIT, payment_option=PaymentOption.INVOICE, **kwargs)


def _call(audit, auditor, outcome, **kwargs):
    audit.refresh_from_db()
    return audit_services.call_attempt_record(
        audit_id=audit.pk,
        auditor=auditor,
        outcome=outcome,
        expected_version=audit.version,
        script=CallScript.objects.current(),
        **kwargs,
    )


def _row(report, user):
    return next(row for row in report["reps"] if row["rep"].pk == user.pk)


def test_a_leavers_audits_stay_theirs_after_the_handover(manager, leaver, rep, auditor):
    confirmed = _billed(leaver)
    disputed = _billed(leaver)
    pending = _billed(leaver)
    for deal in (confirmed, disputed, pending):
        audit_services.wrap_up_hand_over(deal_id=deal.pk, rep=leaver, **checklist())
    _call(Audit.objects.get(deal=confirmed), auditor, Outcome.CONFIRMED, answers=YES)
    _call(
        Audit.objects.get(deal=disputed),
        auditor,
        Outcome.DISPUTED,
        answers={**YES, "purchase": "no"},
        notes="Says they never agreed",
    )
    team.user_deactivate(manager=manager, leaver=leaver, successor=rep)
    # A confirmation recorded after the handover: still the leaver's sale.
    _call(Audit.objects.get(deal=pending), auditor, Outcome.CONFIRMED, answers=YES)
    assert Deal.objects.get(pk=pending.pk).rep == rep

    report = audit_report(manager=manager)
    mine = _row(report, leaver)
    assert (mine["confirmed"], mine["disputed"], mine["closed"]) == (2, 1, 3)
    assert mine["confirm_rate"] == pytest.approx(2 / 3)
    colleague = _row(report, rep)
    assert (colleague["confirmed"], colleague["disputed"], colleague["closed"]) == (0, 0, 0)


def test_the_audit_report_page_lists_a_leaver(manager, manager_client, leaver, rep):
    team.user_deactivate(manager=manager, leaver=leaver, successor=rep)
    page = manager_client.get(reverse("audits:report")).content.decode()
    assert str(leaver) in page and "left" in page


def test_an_audit_after_a_handover_is_credited_to_the_new_rep(manager, leaver, rep, auditor):
    deal = _billed(leaver)
    team.user_deactivate(manager=manager, leaver=leaver, successor=rep)
    audit = audit_services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **checklist())
    assert audit.rep == rep


def test_the_backfill_names_the_rep_who_had_the_deal_when_it_was_queued(manager, leaver, rep):
    before = _billed(leaver)
    audit = audit_services.wrap_up_hand_over(deal_id=before.pk, rep=leaver, **checklist())
    team.user_deactivate(manager=manager, leaver=leaver, successor=rep)
    untouched = DealFactory(rep=rep, stage=Stage.DEPOSIT)
    later = audit_services.wrap_up_hand_over(deal_id=untouched.pk, rep=rep, **checklist())
    Audit.objects.update(rep=None)
    migration = importlib.import_module("audits.migrations.0005_audit_seller")
    migration.backfill_audit_seller(apps, None)
    assert Audit.objects.get(pk=audit.pk).rep_id == leaver.pk
    assert Audit.objects.get(pk=later.pk).rep_id == rep.pk


def test_the_seller_backfill_reads_the_first_handover(manager, leaver, rep):
    deal = DealFactory(rep=leaver)
    team.user_deactivate(manager=manager, leaver=leaver, successor=rep)
    Deal.objects.update(sold_by=None)
    migration = importlib.import_module("pipeline.migrations.0025_terms_history_and_seller")
    migration.backfill_sold_by(apps, None)
    assert Deal.objects.get(pk=deal.pk).sold_by_id == leaver.pk


def test_promised_money_stays_with_the_seller_after_a_handover(manager, leaver, rep, customer):
    deal = services.deal_promise(
        rep=leaver,
        customer=CustomerFactory(owner=leaver),
        title="Chairs",
        amount=Decimal("3000.00"),
        payment_option=PaymentOption.INVOICE,
        expected_delivery_date=timezone.localdate() + timedelta(days=20),
        next_step="Call",
        next_step_date=timezone.localdate() + timedelta(days=2),
    )
    team.user_deactivate(manager=manager, leaver=leaver, successor=rep)
    assert Deal.objects.get(pk=deal.pk).rep == rep
    figures = team_month_figures([leaver.pk, rep.pk], timezone.localdate())
    assert figures[leaver.pk].promised == Decimal("3000.00")
    assert figures[rep.pk].promised == Decimal("0.00")


# --- nothing new in the name of someone who left -------------------------------------


def test_a_rep_who_left_cannot_log_a_deal_or_a_customer(manager, leaver, rep, customer):
    team.user_deactivate(manager=manager, leaver=leaver, successor=rep)
    leaver.refresh_from_db()
    with pytest.raises(services.RepInactive, match="has left"):
        services.customer_add(owner=leaver, name="New one", phone="555 0100")
    with pytest.raises(services.RepInactive):
        services.deal_promise(
            rep=leaver,
            customer=customer,
            title="Chairs",
            amount=Decimal("3000.00"),
            payment_option=PaymentOption.INVOICE,
            expected_delivery_date=timezone.localdate() + timedelta(days=20),
            next_step="Call",
            next_step_date=timezone.localdate() + timedelta(days=2),
        )
    assert not Deal.objects.filter(rep=leaver).exists()
    assert not Customer.objects.filter(name="New one").exists()


def test_a_leavers_customer_with_no_deal_yet_goes_to_the_successor(manager, leaver, rep):
    fresh = CustomerFactory(owner=leaver, name="Just added")
    sold = CustomerFactory(owner=leaver, name="Sold before")
    DealFactory(rep=leaver, customer=sold, stage=Stage.LOST, lost_reason="other")
    handover = team.user_deactivate(manager=manager, leaver=leaver, successor=rep)
    assert Customer.objects.get(pk=fresh.pk).owner == rep
    assert Customer.objects.get(pk=sold.pk).owner == leaver  # history stays theirs
    assert handover.customers == 1


# --- the Team page: work left with someone who left ----------------------------------


def test_the_team_page_lists_work_left_with_a_leaver_and_hands_it_over(
    manager, manager_client, leaver, rep
):
    # As the race left it before the fix: deactivated, a deal still in their name.
    User.objects.filter(pk=leaver.pk).update(is_active=False)
    stray = DealFactory(rep=leaver, title="Logged at the last second")
    page = manager_client.get(reverse("team")).content.decode()
    assert "Work still with people who left" in page
    assert f"Hand over {leaver}" in page.replace("&#x27;s work", "")
    response = manager_client.post(
        reverse("team_deactivate", args=[leaver.pk]), {"successor": rep.pk}
    )
    assert response.status_code == 302
    assert Deal.objects.get(pk=stray.pk).rep == rep
    assert stray.reassignments.get().from_rep == leaver
    page = manager_client.get(reverse("team")).content.decode()
    assert "Work still with people who left" not in page


def test_a_manager_cannot_hand_over_another_teams_leaver(manager_client, other_rep, rep):
    User.objects.filter(pk=other_rep.pk).update(is_active=False)
    DealFactory(rep=other_rep)
    response = manager_client.post(
        reverse("team_deactivate", args=[other_rep.pk]), {"successor": rep.pk}
    )
    assert response.status_code == 404
    assert Deal.objects.filter(rep=other_rep).count() == 1


def test_handing_over_refuses_an_active_person(manager, leaver, rep):
    with pytest.raises(team.TeamError, match="still active"):
        team.leaver_hand_over(manager=manager, leaver=leaver, successor=rep)


def test_another_manager_does_not_see_my_leaver(manager, leaver, other_rep):
    User.objects.filter(pk=leaver.pk).update(is_active=False)
    DealFactory(rep=leaver)
    assert team.work_left_with_leavers(other_rep.manager) == []
    assert [person.pk for person, _ in team.work_left_with_leavers(manager)] == [leaver.pk]


def test_a_leaver_row_is_refused_for_a_successor_who_left(manager, leaver, rep):
    UserFactory(username="gone", manager=manager, is_active=False)
    gone = User.objects.get(username="gone")
    with pytest.raises(team.TeamError):
        team.user_deactivate(manager=manager, leaver=leaver, successor=gone)
