"""A payment plan is part of the terms the audit confirmed (issue 20): before the
audit the rep sets one; after it, the rep's manager does, with why, and the deal's
timeline says who set it, from what, to what and why."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.models import PaymentPlan
from pipeline.stages import Stage
from pipeline.terms_history import TermsChange, TermsChangeState, TermsPath
from tests.factories import DealFactory


def _schedule():
    today = timezone.localdate()
    return [
        (today + timedelta(days=7), Decimal("500.00")),
        (today + timedelta(days=37), Decimal("500.00")),
    ]


def test_before_the_audit_the_rep_sets_a_plan_and_nothing_is_asked(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.PROMISED)
    services.payment_plan_create(deal_id=deal.pk, created_by=rep, instalments=_schedule())
    assert PaymentPlan.objects.filter(deal=deal).exists()
    assert not TermsChange.objects.filter(deal=deal).exists()


def test_after_the_audit_a_rep_is_refused_and_no_plan_is_made(delivered_deal, rep):
    with pytest.raises(services.BillingError, match="your manager's to set"):
        services.payment_plan_create(
            deal_id=delivered_deal.pk, created_by=rep, instalments=_schedule(), note="Crunch"
        )
    assert not PaymentPlan.objects.filter(deal=delivered_deal).exists()


def test_a_manager_of_another_team_is_refused(delivered_deal, other_rep):
    with pytest.raises(services.BillingError, match="your manager's to set"):
        services.payment_plan_create(
            deal_id=delivered_deal.pk,
            created_by=other_rep.manager,
            instalments=_schedule(),
            note="Crunch",
        )
    assert not PaymentPlan.objects.filter(deal=delivered_deal).exists()


def test_the_manager_must_say_why_next_to_the_note(delivered_deal, manager):
    with pytest.raises(services.BillingError) as refused:
        services.payment_plan_create(
            deal_id=delivered_deal.pk, created_by=manager, instalments=_schedule(), note=" "
        )
    assert refused.value.field == "note"
    assert not PaymentPlan.objects.filter(deal=delivered_deal).exists()


def test_the_managers_plan_is_on_the_deals_timeline_with_who_and_why(
    delivered_deal, manager, manager_client
):
    services.payment_plan_create(
        deal_id=delivered_deal.pk,
        created_by=manager,
        instalments=_schedule(),
        note="Cash crunch after their busy season",
    )
    change = TermsChange.objects.get(deal=delivered_deal)
    assert (change.path, change.state) == (TermsPath.MANAGER, TermsChangeState.APPROVED)
    assert (change.asked_by, change.decided_by) == (manager, manager)
    assert "2 instalments of 500.00" in change.summary
    page = manager_client.get(delivered_deal.get_absolute_url()).content.decode()
    assert "Cash crunch after their busy season" in page
    assert "2 instalments of 500.00" in page
