"""Issue 15 through the pages: the dispute page, the deal page, the call screen,
the wrap-up form, the deals list and the audit report; forged POSTs included."""

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from audits import services
from audits.models import Audit, CallAttempt, DisputeDecision, Outcome
from billing.policy import invoice_deadline
from pipeline.models import Deal, Role
from pipeline.stages import Stage
from tests.audits.conftest import checklist, record
from tests.conftest import _client_for
from tests.factories import DealFactory, UserFactory

pytestmark = pytest.mark.django_db

HEARD = "Never heard of your service."


@pytest.fixture
def disputed(audit, auditor) -> Audit:
    record(audit, auditor, Outcome.DISPUTED, notes=HEARD)
    audit.refresh_from_db()
    return audit


def _decide(client, deal_pk, decision=DisputeDecision.LOST, reason="No such order."):
    return client.post(
        reverse("audits:dispute", args=[deal_pk]), {"decision": decision, "reason": reason}
    )


def test_the_manager_decides_a_dispute_on_its_page(disputed, manager_client):
    page = manager_client.get(reverse("audits:dispute", args=[disputed.deal_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert HEARD in html and "Record the decision" in html
    response = _decide(manager_client, disputed.deal_id)
    assert response.status_code == 302
    deal = Deal.objects.get(pk=disputed.deal_id)
    assert deal.stage == Stage.LOST and deal.lost_reason == "disputed_at_audit"


def test_a_decision_without_a_reason_comes_back_with_a_message(disputed, manager_client):
    response = _decide(manager_client, disputed.deal_id, reason=" ")
    assert response.status_code == 422
    assert "Say why" in response.content.decode()
    assert Audit.objects.get(pk=disputed.pk).awaits_decision


def test_a_double_submitted_decision_is_recorded_once(disputed, manager_client):
    _decide(manager_client, disputed.deal_id, DisputeDecision.RE_CLOSE, "Re-close it.")
    again = _decide(manager_client, disputed.deal_id, DisputeDecision.LOST, "Lost.")
    assert again.status_code == 302
    audit = Audit.objects.get(pk=disputed.pk)
    assert audit.decision == DisputeDecision.RE_CLOSE
    assert Deal.objects.get(pk=disputed.deal_id).stage == Stage.DEPOSIT


def test_the_rep_sees_the_dispute_but_cannot_decide_it(disputed, rep_client):
    page = rep_client.get(reverse("audits:dispute", args=[disputed.deal_id]))
    assert page.status_code == 200
    assert "Your manager decides" in page.content.decode()
    assert "Record the decision" not in page.content.decode()
    assert _decide(rep_client, disputed.deal_id).status_code == 403
    assert Audit.objects.get(pk=disputed.pk).awaits_decision


def test_a_manager_of_another_team_gets_404(disputed):
    stranger = _client_for(UserFactory(username="boss2", role=Role.MANAGER))
    assert stranger.get(reverse("audits:dispute", args=[disputed.deal_id])).status_code == 404
    assert _decide(stranger, disputed.deal_id).status_code == 404
    assert Audit.objects.get(pk=disputed.pk).awaits_decision


def test_an_auditor_cannot_open_the_dispute_page(disputed, auditor_client):
    assert auditor_client.get(reverse("audits:dispute", args=[disputed.deal_id])).status_code == 404


def test_a_forged_re_close_after_a_second_dispute_is_refused(
    disputed, auditor, rep, manager_client
):
    _decide(manager_client, disputed.deal_id, DisputeDecision.RE_CLOSE, "One more try.")
    second = services.wrap_up_hand_over(deal_id=disputed.deal_id, rep=rep, **checklist())
    record(second, auditor, Outcome.DISPUTED, notes="Still no.")
    page = manager_client.get(reverse("audits:dispute", args=[disputed.deal_id]))
    assert "second dispute is final" in page.content.decode()
    assert 'value="re_close"' not in page.content.decode()
    forged = _decide(manager_client, disputed.deal_id, DisputeDecision.RE_CLOSE, "Again")
    assert forged.status_code == 422
    assert Audit.objects.get(pk=second.pk).awaits_decision


def test_the_disputed_deal_page_for_the_rep(disputed, rep_client):
    html = rep_client.get(f"/deals/{disputed.deal_id}/").content.decode()
    assert "Disputed at audit — awaiting the manager" in html
    assert HEARD in html  # the panel and the timeline
    assert "Issue an invoice" not in html and "Record a payment" not in html
    assert "Wrap up and hand to audit" not in html
    assert "Re-closed with the customer?" not in html
    assert "See the dispute" in html
    assert 'name="to_stage"' not in html  # nothing moves until the manager decides


def test_the_disputed_deal_page_for_the_manager_links_to_the_decision(disputed, manager_client):
    html = manager_client.get(f"/deals/{disputed.deal_id}/").content.decode()
    assert "Decide on the dispute" in html
    assert reverse("audits:dispute", args=[disputed.deal_id]) in html


def test_the_timeline_shows_the_dispute_and_the_decision(disputed, manager_client):
    _decide(manager_client, disputed.deal_id, DisputeDecision.RE_CLOSE, "Talk to the CFO.")
    html = manager_client.get(f"/deals/{disputed.deal_id}/").content.decode()
    timeline = html[html.index("Timeline") :]
    assert "Disputed at audit" in timeline and HEARD in timeline
    assert "Dispute decided: sent back to the rep to re-close" in timeline
    assert "Talk to the CFO." in timeline
    assert "Wrap up and hand to audit" in html  # sent back: the rep may wrap it up again


def test_the_board_lists_disputed_deals_apart(disputed, manager_client):
    html = manager_client.get("/board/").content.decode()
    assert "Disputed at audit — awaiting your decision" in html
    assert reverse("audits:dispute", args=[disputed.deal_id]) in html


# --- Billing waits for the audit ------------------------------------------------------


def test_no_invoice_button_before_the_audit_and_a_forged_post_is_refused(audit, rep_client):
    html = rep_client.get(f"/deals/{audit.deal_id}/").content.decode()
    assert "Issue an invoice" not in html
    assert "only after its audit is confirmed" in html
    forged = rep_client.post(
        f"/billing/deals/{audit.deal_id}/invoices/new/",
        {"amount": "10.00", "terms_days": 30, "issue_date": timezone.localdate().isoformat()},
    )
    assert forged.status_code in (200, 422)
    assert "only after its audit is confirmed" in forged.content.decode()
    assert not Deal.objects.get(pk=audit.deal_id).invoices.exists()


def test_the_cut_off_is_explained_on_a_deal_that_will_be_invoiced(audit, rep_client):
    deal = Deal.objects.get(pk=audit.deal_id)
    deal.customer.accounting_cutoff_day = 15
    deal.customer.save()
    html = rep_client.get(f"/deals/{deal.pk}/").content.decode()
    today = timezone.localdate()
    deadline = invoice_deadline(
        15, today
    )  # the day is pinned in tests/billing/test_invoice_deadline.py
    assert "needs invoices by day 15" in html
    assert f"after the audit, {deadline.advice(today)}" in html


# --- Retry spacing, call-back, what Confirmed needs -------------------------------------


def _claim_and_post(client, audit, **data):
    client.post(reverse("audits:claim", args=[audit.pk]))
    audit.refresh_from_db()
    payload = {"version": audit.version, "script_version": 1, **data}
    return client.post(reverse("audits:attempt_new", args=[audit.pk]), payload)


def test_a_forged_no_answer_before_the_retry_time_is_refused(audit, auditor, auditor_client):
    record(audit, auditor, Outcome.NO_ANSWER)
    response = _claim_and_post(auditor_client, audit, outcome=Outcome.NO_ANSWER)
    assert response.status_code == 422
    assert "counts from" in response.content.decode()
    assert CallAttempt.objects.count() == 1


def test_the_call_screen_says_until_when_no_answer_waits(audit, auditor, auditor_client):
    record(audit, auditor, Outcome.NO_ANSWER)
    audit.refresh_from_db()
    auditor_client.post(reverse("audits:claim", args=[audit.pk]))
    html = auditor_client.get(reverse("audits:call", args=[audit.pk])).content.decode()
    until = timezone.localtime(audit.retry_at).strftime("%H:%M")
    assert f"No answer — can be recorded again from {until}" in html


def test_the_call_screen_says_what_confirmed_needs_before_submitting(audit, auditor_client):
    auditor_client.post(reverse("audits:claim", args=[audit.pk]))
    html = auditor_client.get(reverse("audits:call", args=[audit.pk])).content.decode()
    assert "Confirmed — every question above answered Yes" in html


def test_a_call_back_in_the_past_is_refused_on_the_call_screen(audit, auditor_client):
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = _claim_and_post(auditor_client, audit, outcome=Outcome.CALL_BACK, callback_at=past)
    assert response.status_code == 422
    assert "must be in the future" in response.content.decode()
    assert not CallAttempt.objects.exists()


# --- The wrap-up starts empty -----------------------------------------------------------


def test_the_wrap_up_form_starts_empty(billed_deal, rep_client):
    html = rep_client.get(reverse("audits:wrap_up", args=[billed_deal.pk])).content.decode()
    for name in ("call_window_start", "call_window_end", "confirmed_phone"):
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
        assert "value=" not in tag, tag
    assert "checked" not in html
    assert billed_deal.customer.phone in html  # shown as a hint to read back, not filled in


def test_an_unconfirmed_wrap_up_comes_back_with_messages(billed_deal, rep_client):
    response = rep_client.post(reverse("audits:wrap_up", args=[billed_deal.pk]), {})
    assert response.status_code == 422
    html = response.content.decode()
    assert "Confirm the number the auditor will call." in html
    assert "Give the window" in html or "When may the auditor call?" in html
    assert not Audit.objects.filter(deal=billed_deal).exists()


# --- Flaked: the rep's list, home and the report -----------------------------------------


@pytest.fixture
def flaked(audit, auditor) -> Deal:
    now = timezone.now() - timedelta(hours=2)
    # The calls are made in the customer's window (none counts before it opens).
    Audit.objects.filter(pk=audit.pk).update(call_window_start=now - timedelta(minutes=1))
    for _ in range(3):
        record(audit, auditor, Outcome.NO_ANSWER, now=now)
        audit.refresh_from_db()
        now = (audit.retry_at or now) + timedelta(minutes=1)
    return Deal.objects.get(pk=audit.deal_id)


def test_a_flaked_deal_has_a_badge_on_the_deals_list_and_the_home_pipeline(flaked, rep_client):
    listing = rep_client.get("/deals/").content.decode()
    assert "Flaked at audit — re-close" in listing
    home = rep_client.get("/").content.decode()
    assert "Flaked at audit — re-close" in home


def test_the_deals_list_filters_flaked_deals_in_few_queries(
    flaked, rep, rep_client, django_assert_max_num_queries
):
    DealFactory(rep=rep, customer=flaked.customer)
    with django_assert_max_num_queries(8):
        html = rep_client.get("/deals/?audit=flaked").content.decode()
    assert "1 deal<" in html or "1 deal\n" in html or ">1 deal" in html


def test_the_reps_flake_count_on_the_report_links_to_their_flaked_deals(
    flaked, rep, manager_client, rep_client
):
    html = manager_client.get(reverse("audits:report")).content.decode()
    link = f"/deals/?audit=ever_flaked&amp;rep={rep.pk}"
    assert link in html
    listing = manager_client.get(f"/deals/?audit=ever_flaked&rep={rep.pk}").content.decode()
    assert f"#{flaked.pk} " in listing


# --- Moves and labels -------------------------------------------------------------------


def test_move_to_offers_only_legal_moves_never_audit_confirmed(billed_deal, rep_client):
    html = rep_client.get(f"/deals/{billed_deal.pk}/").content.decode()
    select = re.search(r'<select name="to_stage".*?</select>', html, re.S).group(0)
    assert 'value="audit_confirmed"' not in select
    assert 'value="lost"' in select
    assert 'value="delivered"' not in select  # a billed deal is audited first


def test_the_pipeline_card_offers_only_legal_moves(billed_deal, rep, rep_client):
    upfront = DealFactory(
        rep=rep, customer=billed_deal.customer, payment_option="upfront", stage=Stage.DEPOSIT
    )
    html = rep_client.get("/deals/board/").content.decode()
    options = re.search(
        rf'<select name="to_stage" id="move-{upfront.pk}".*?</select>', html, re.S
    ).group(0)
    assert re.findall(r'value="(\w+)"', options) == ["delivered"]
    # A billed deal waiting for its audit has no move to offer from its card.
    assert f'id="move-{billed_deal.pk}"' not in html


class _Labels(HTMLParser):
    CONTROLS = {"input", "select", "textarea", "button"}

    def __init__(self):
        super().__init__()
        self.label_for: list[str] = []
        self.ids: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label" and attrs.get("for"):
            self.label_for.append(attrs["for"])
        if attrs.get("id"):
            self.ids.append((attrs["id"], tag))


def test_every_label_on_the_deal_page_names_exactly_one_control(deal, rep_client):
    page = rep_client.get(f"/deals/{deal.pk}/").content.decode()
    payment_form = rep_client.get(
        f"/billing/deals/{deal.pk}/payments/new/", headers={"HX-Request": "true"}
    ).content.decode()
    # The page with the payment form open, as htmx swaps it into #money-action.
    html = page.replace('<div id="money-action"></div>', payment_form)
    assert payment_form and html != page
    parser = _Labels()
    parser.feed(html)
    assert len(parser.label_for) == len(set(parser.label_for)), "a label target repeats"
    for target in parser.label_for:
        controls = [tag for id_, tag in parser.ids if id_ == target]
        assert len(controls) == 1, (target, controls)
        assert controls[0] in _Labels.CONTROLS, (target, controls)


def test_a_forged_move_of_a_disputed_deal_is_refused_with_a_message(disputed, rep_client):
    deal = Deal.objects.get(pk=disputed.deal_id)
    response = rep_client.post(
        f"/deals/{deal.pk}/move/",
        {"to_stage": "lost", "lost_reason": "other", "version": deal.version},
    )
    assert response.status_code == 422
    assert "nothing moves until the manager decides" in response.content.decode()
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DEPOSIT


def test_a_forged_move_to_audit_confirmed_is_refused(billed_deal, rep_client):
    response = rep_client.post(
        f"/deals/{billed_deal.pk}/move/",
        {"to_stage": "audit_confirmed", "version": billed_deal.version},
    )
    assert response.status_code == 422
    assert "set by Cleared from the facts" in response.content.decode()
    assert Deal.objects.get(pk=billed_deal.pk).stage == Stage.DEPOSIT
