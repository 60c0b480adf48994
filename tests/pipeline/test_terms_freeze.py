"""Terms are frozen by the audit (issue 20, section 1): free before the audit is
confirmed; after it, changed only by sending the deal back to audit or with the
manager's approval, every change on the timeline; issued invoices never change."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from audits.services import wrap_up_refusal
from pipeline import services, terms_freeze
from pipeline.models import Deal
from pipeline.selectors import deal_timeline
from pipeline.stages import IllegalMove, Stage
from pipeline.terms import PaymentOption
from pipeline.terms_history import TermsChange, TermsChangeState, TermsPath
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_scan
from tests.conftest import _client_for
from tests.factories import DealFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db

AMOUNT = Decimal("9600.00")
NEW_AMOUNT = Decimal("12600.00")


@pytest.fixture
def audited(rep, customer):
    """A billed deal whose audit is confirmed at 9,600."""
    return DealFactory(
        rep=rep,
        customer=customer,
        amount=AMOUNT,
        stage=Stage.AUDIT_CONFIRMED,
        deposit_required=False,
    )


def _edit(deal, actor, **fields):
    deal.refresh_from_db()
    return services.deal_update(
        deal_id=deal.pk, actor=actor, expected_version=deal.version, **fields
    )


# --- before the audit: free --------------------------------------------------------


def test_terms_change_freely_before_the_audit_and_the_change_is_on_the_timeline(deal, rep):
    _edit(deal, rep, amount=Decimal("1500.00"), title="Website and logo")
    deal.refresh_from_db()
    assert deal.amount == Decimal("1500.00")
    change = TermsChange.objects.get(deal=deal)
    assert (change.path, change.state, change.asked_by) == (
        TermsPath.FREE,
        TermsChangeState.APPLIED,
        rep,
    )
    assert change.changes["amount"]["from"] == "1000.00"
    assert change.changes["amount"]["to"] == "1500.00"
    assert change.changes["title"]["to"] == "Website and logo"
    assert any(entry["kind"] == "terms" for entry in deal_timeline(deal))


def test_editing_only_the_next_step_writes_no_terms_change(audited, rep):
    _edit(audited, rep, next_step="Call about delivery")
    audited.refresh_from_db()
    assert audited.next_step == "Call about delivery"
    assert not TermsChange.objects.exists()


# --- after the audit ---------------------------------------------------------------


def test_a_change_of_audited_terms_without_a_choice_is_refused(audited, rep):
    with pytest.raises(terms_freeze.TermsFrozen, match="frozen: the audit confirmed them"):
        _edit(audited, rep, amount=NEW_AMOUNT)
    audited.refresh_from_db()
    assert audited.amount == AMOUNT
    assert not TermsChange.objects.exists()


def test_a_lower_amount_is_frozen_too(audited, rep):
    with pytest.raises(terms_freeze.TermsFrozen):
        _edit(audited, rep, amount=Decimal("9000.00"))


def test_a_change_of_frozen_terms_needs_a_reason(audited, rep):
    with pytest.raises(terms_freeze.TermsReasonMissing):
        _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="  ")


def test_sent_back_to_audit_the_change_is_saved_and_the_deal_needs_a_new_wrap_up(audited, rep):
    deal = _edit(
        audited, rep, amount=NEW_AMOUNT, terms_path="back_to_audit", reason="Added a second site"
    )
    assert deal.amount == NEW_AMOUNT
    assert deal.stage == Stage.PROMISED
    event = deal.stage_events.order_by("-id").first()
    assert (event.from_stage, event.to_stage, event.actor) == (
        Stage.AUDIT_CONFIRMED,
        Stage.PROMISED,
        rep,
    )
    assert "Added a second site" in event.reason
    change = TermsChange.objects.get(deal=deal)
    assert (change.path, change.state, change.reason) == (
        TermsPath.BACK_TO_AUDIT,
        TermsChangeState.APPLIED,
        "Added a second site",
    )
    # The audit path is open again: the rep wraps it up and an auditor confirms.
    assert wrap_up_refusal(deal) is None


def test_a_deal_with_a_deposit_goes_back_to_deposit(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, amount=AMOUNT, stage=Stage.AUDIT_CONFIRMED)
    deal = _edit(deal, rep, amount=NEW_AMOUNT, terms_path="back_to_audit", reason="Bigger order")
    assert deal.stage == Stage.DEPOSIT


def test_a_delivered_deal_cannot_go_back_to_audit(audited, rep):
    Deal.objects.filter(pk=audited.pk).update(stage=Stage.DELIVERED)
    with pytest.raises(IllegalMove, match="can't go back to audit"):
        _edit(audited, rep, amount=NEW_AMOUNT, terms_path="back_to_audit", reason="More")


def test_asking_the_manager_changes_nothing_until_approved(audited, rep, manager):
    deal = _edit(
        audited,
        rep,
        amount=NEW_AMOUNT,
        next_step="Send the new quote",
        terms_path="manager",
        reason="Customer added a second site",
    )
    assert deal.amount == AMOUNT  # not yet
    assert deal.next_step == "Send the new quote"  # the rest is saved
    assert deal.stage == Stage.AUDIT_CONFIRMED
    change = TermsChange.objects.get(deal=deal)
    assert change.state == TermsChangeState.ASKED

    decided = services.terms_change_decide(
        change_id=change.pk, manager=manager, approve=True, note="Fine"
    )
    assert (decided.state, decided.decided_by) == (TermsChangeState.APPROVED, manager)
    deal.refresh_from_db()
    assert deal.amount == NEW_AMOUNT
    assert deal.version == audited.version + 2  # the edit, then the approval


def test_a_declined_change_leaves_the_terms_as_confirmed(audited, rep, manager):
    _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="Bigger order")
    change = TermsChange.objects.get(deal=audited)
    services.terms_change_decide(change_id=change.pk, manager=manager, approve=False, note="No")
    audited.refresh_from_db()
    assert audited.amount == AMOUNT
    change.refresh_from_db()
    assert (change.state, change.decision_note) == (TermsChangeState.DECLINED, "No")


def test_a_change_is_decided_once(audited, rep, manager):
    _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="Bigger order")
    change = TermsChange.objects.get(deal=audited)
    services.terms_change_decide(change_id=change.pk, manager=manager, approve=False)
    with pytest.raises(terms_freeze.TermsChangeDecided, match="declined this already"):
        services.terms_change_decide(change_id=change.pk, manager=manager, approve=True)
    audited.refresh_from_db()
    assert audited.amount == AMOUNT


def test_a_rep_asks_once_at_a_time(audited, rep):
    _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="Bigger order")
    with pytest.raises(IllegalMove, match="asked your manager already"):
        _edit(audited, rep, amount=Decimal("13000.00"), terms_path="manager", reason="Even more")


def test_only_the_reps_manager_decides(audited, rep, other_rep):
    _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="Bigger order")
    change = TermsChange.objects.get(deal=audited)
    with pytest.raises(PermissionDenied):
        services.terms_change_decide(change_id=change.pk, manager=other_rep.manager, approve=True)
    with pytest.raises(PermissionDenied):
        services.terms_change_decide(change_id=change.pk, manager=rep, approve=True)
    change.refresh_from_db()
    assert change.state == TermsChangeState.ASKED


def test_an_approval_is_refused_if_the_terms_moved_meanwhile(audited, rep, manager):
    _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="Bigger order")
    change = TermsChange.objects.get(deal=audited)
    Deal.objects.filter(pk=audited.pk).update(amount=Decimal("9700.00"))
    with pytest.raises(IllegalMove, match="changed since this was asked"):
        services.terms_change_decide(change_id=change.pk, manager=manager, approve=True)
    change.refresh_from_db()
    assert change.state == TermsChangeState.ASKED  # rolled back with the refusal


# --- upfront, invoices, stale pages -------------------------------------------------


def test_an_upfront_deal_is_free_until_paid_then_frozen(rep, customer, manager):
    deal = DealFactory(
        rep=rep,
        customer=customer,
        payment_option=PaymentOption.UPFRONT,
        deposit_required=True,
        amount=Decimal("500.00"),
    )
    assert terms_freeze.terms_frozen_by(deal) == ""
    PaymentFactory(deal=deal, amount=Decimal("500.00"))
    deal.refresh_from_db()
    assert "paid upfront" in terms_freeze.terms_frozen_by(deal)
    with pytest.raises(terms_freeze.TermsFrozen):
        _edit(deal, rep, title="Something else")
    # No audit to go back to: only the manager can change it.
    assert [value for value, _ in terms_freeze.terms_choices(deal)] == ["manager"]
    with pytest.raises(IllegalMove, match="can't go back to audit"):
        _edit(deal, rep, title="Something else", terms_path="back_to_audit", reason="x")


def test_a_new_amount_is_refused_while_an_invoice_is_issued(audited, rep):
    invoice = InvoiceFactory(deal=audited)
    with pytest.raises(IllegalMove, match=f"{invoice.display_number} is issued.*void it first"):
        _edit(audited, rep, amount=NEW_AMOUNT, terms_path="back_to_audit", reason="More")
    audited.refresh_from_db()
    assert (audited.amount, audited.stage) == (AMOUNT, Stage.AUDIT_CONFIRMED)
    assert not TermsChange.objects.exists()


def test_an_approval_is_refused_once_an_invoice_was_issued_meanwhile(audited, rep, manager):
    _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="Bigger order")
    InvoiceFactory(deal=audited)
    change = TermsChange.objects.get(deal=audited)
    with pytest.raises(IllegalMove, match="void it first"):
        services.terms_change_decide(change_id=change.pk, manager=manager, approve=True)


def test_a_void_invoice_no_longer_holds_the_amount(audited, rep):
    InvoiceFactory(deal=audited, voided_at=timezone.now())
    deal = _edit(audited, rep, amount=NEW_AMOUNT, terms_path="back_to_audit", reason="More")
    assert deal.amount == NEW_AMOUNT


def test_an_edit_from_a_stale_page_is_refused(audited, rep):
    version = audited.version
    services.touch_record(
        deal=audited,
        author=rep,
        kind="call",
        discussed="Delivery",
        agreed_to="Tuesday",
        next_step="Deliver",
        next_step_date=timezone.localdate() + datetime.timedelta(days=1),
    )
    with pytest.raises(services.StaleDeal):
        services.deal_update(
            deal_id=audited.pk,
            actor=rep,
            expected_version=version,
            amount=NEW_AMOUNT,
            terms_path="manager",
            reason="x",
        )
    assert not TermsChange.objects.exists()


# --- the reminders ------------------------------------------------------------------


def test_the_manager_is_reminded_and_the_rep_hears_the_answer(audited, rep, manager):
    _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="Second site")
    reminders_scan()
    asked = Reminder.objects.get(kind=ReminderKind.TERMS_CHANGE_ASKED)
    assert asked.owner == manager
    assert "9,600.00 → 12,600.00" in asked.why and "Second site" in asked.why
    change = TermsChange.objects.get(deal=audited)
    services.terms_change_decide(change_id=change.pk, manager=manager, approve=True)
    reminders_scan()
    asked.refresh_from_db()
    assert asked.state == ReminderState.RESOLVED
    told = Reminder.objects.get(kind=ReminderKind.TERMS_CHANGE_DECIDED)
    assert told.owner == rep and "approved" in told.why


# --- the pages ----------------------------------------------------------------------


def _post_edit(client, deal, **overrides):
    deal.refresh_from_db()
    data = {
        "version": deal.version,
        "title": deal.title,
        "amount": str(deal.amount),
        "expected_delivery_date": deal.expected_delivery_date.isoformat(),
        "next_step": deal.next_step,
        "next_step_date": deal.next_step_date.isoformat(),
        "notes": "",
    }
    data.update(overrides)
    return client.post(f"/deals/{deal.pk}/edit/", data)


def test_the_edit_page_says_the_terms_are_frozen_and_offers_both_ways(rep_client, audited):
    page = rep_client.get(f"/deals/{audited.pk}/edit/").content.decode()
    assert "The terms are frozen" in page
    assert "Send back to audit" in page and "Ask my manager" in page


def test_a_frozen_change_without_a_choice_is_shown_next_to_the_choice(rep_client, audited):
    response = _post_edit(rep_client, audited, amount="12600.00")
    assert response.status_code == 422
    assert "Choose how to change them" in response.content.decode()
    audited.refresh_from_db()
    assert audited.amount == AMOUNT


def test_the_rep_asks_from_the_edit_page(rep_client, audited):
    response = _post_edit(
        rep_client, audited, amount="12600.00", terms_path="manager", terms_reason="Second site"
    )
    assert response.status_code == 302
    assert TermsChange.objects.get(deal=audited).state == TermsChangeState.ASKED


def test_a_rep_cannot_edit_another_reps_deal(other_rep_client, audited):
    response = _post_edit(
        other_rep_client, audited, amount="12600.00", terms_path="manager", terms_reason="x"
    )
    assert response.status_code == 404
    assert not TermsChange.objects.exists()


def test_a_manager_of_another_team_cannot_decide(audited, rep, other_rep, manager):
    _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="Second site")
    change = TermsChange.objects.get(deal=audited)
    url = f"/deals/terms-changes/{change.pk}/decide/"
    for outsider in (other_rep.manager, other_rep, rep):
        response = _client_for(outsider).post(url, {"decision": "approve"})
        assert response.status_code == 404
    change.refresh_from_db()
    assert change.state == TermsChangeState.ASKED
    response = _client_for(manager).post(url, {"decision": "approve"})
    assert response.status_code == 302
    change.refresh_from_db()
    assert change.state == TermsChangeState.APPROVED


def test_the_deal_page_answers_who_changed_the_amount_and_who_approved(
    audited, rep, manager, manager_client
):
    _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="Second site")
    change = TermsChange.objects.get(deal=audited)
    services.terms_change_decide(change_id=change.pk, manager=manager, approve=True)
    page = manager_client.get(f"/deals/{audited.pk}/").content.decode()
    assert "9,600.00" in page and "12,600.00" in page
    assert "Second site" in page
    assert f"Approved by {manager}" in page
    assert str(rep) in page


def test_an_invoiced_amount_is_refused_next_to_the_amount(rep_client, audited):
    InvoiceFactory(deal=audited)
    response = _post_edit(
        rep_client, audited, amount="12600.00", terms_path="back_to_audit", terms_reason="More"
    )
    assert response.status_code == 422
    assert 'id="id_amount_error"' in response.content.decode()
    assert "void it first" in response.content.decode()


def test_the_manager_can_decide_on_the_deals_timeline_and_the_rep_cannot(
    audited, rep, rep_client, manager_client
):
    _edit(audited, rep, amount=NEW_AMOUNT, terms_path="manager", reason="Second site")
    manager_page = manager_client.get(f"/deals/{audited.pk}/").content.decode()
    assert "Approve the change" in manager_page
    rep_page = rep_client.get(f"/deals/{audited.pk}/").content.decode()
    assert "Approve the change" not in rep_page
    assert "Awaiting the manager" in rep_page
