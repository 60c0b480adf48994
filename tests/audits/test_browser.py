"""The audit as people use it: in headless Chromium, through the real pages."""

import pytest

from audits import services
from audits.models import Audit, AuditState, CallAttempt, Outcome
from pipeline.models import Deal
from pipeline.stages import Stage
from tests.audits.conftest import checklist
from tests.browser import log_in
from tests.factories import CustomerFactory, DealFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTIONS = ("identity", "purchase", "price", "terms", "right_to_cancel")


@pytest.fixture
def queued_audit(rep):
    customer = CustomerFactory(owner=rep, name="Grace Kim", phone="+1 555 0142")
    deal = DealFactory(rep=rep, customer=customer, stage=Stage.DEPOSIT, title="POS bundle")
    return services.wrap_up_hand_over(
        deal_id=deal.pk, rep=rep, **checklist(confirmed_phone="+1 555 0142")
    )


def test_a_rep_wraps_up_a_billed_deal_and_hands_it_to_audit(page, live_server, rep, customer):
    deal = DealFactory(rep=rep, customer=customer, stage=Stage.DEPOSIT)
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}{deal.get_absolute_url()}")
    page.get_by_role("button", name="Wrap up and hand to audit").click()
    page.wait_for_url(f"**/audits/deals/{deal.pk}/wrap-up/")
    # The window defaults to the next hour and the number to the customer's.
    assert page.get_by_label("Confirmed phone number").input_value() == customer.phone

    page.get_by_label("The customer's concerns").fill("Wants the invoice before the 25th")
    page.get_by_label("the customer confirmed they will be available", exact=False).check()
    page.get_by_role("button", name="Hand to audit").click()
    # Unticked boxes come back next to the field, the typing kept.
    error = page.locator("#id_rep_gave_contact_error")
    assert "your name and direct number" in error.inner_text()
    assert "before the 25th" in page.get_by_label("The customer's concerns").input_value()
    assert not Audit.objects.exists()

    page.get_by_label("I gave the customer my name and direct number").check()
    page.get_by_label("Call time reconfirmed", exact=True).check()
    page.get_by_label("Call time reconfirmed a third time").check()
    page.get_by_role("button", name="Hand to audit").click()
    page.wait_for_url(f"{live_server.url}{deal.get_absolute_url()}")

    panel = page.locator("#deal-audit")
    assert "Queued" in panel.inner_text()
    assert "Wants the invoice before the 25th" in panel.inner_text()
    assert Audit.objects.get(deal=deal).state == AuditState.QUEUED


def _claim_from_the_queue(page, live_server, audit):
    log_in(page, live_server, "auditor")
    page.get_by_role("link", name="Audit queue").click()
    page.wait_for_url(f"{live_server.url}/audits/")
    card = page.locator("#due-now .audit-card", has_text="Grace Kim")
    card.get_by_role("button", name="Claim").click()
    page.wait_for_url(f"{live_server.url}/audits/{audit.pk}/call/")
    assert "+1 555 0142" in page.locator(".call-facts").inner_text()
    assert "POS bundle" in page.locator("#h-script").locator("xpath=../..").inner_text()


def test_an_auditor_works_an_audit_from_the_queue_to_confirmed(
    page, live_server, auditor, queued_audit
):
    _claim_from_the_queue(page, live_server, queued_audit)
    for key in QUESTIONS:
        page.locator(f"#id_answer_{key}_0").check()  # yes
    page.get_by_role("radio", name="Confirmed", exact=True).check()
    page.get_by_label("Recording reference").fill("https://pbx.example/rec/991")
    page.get_by_role("button", name="Record the outcome").click()

    page.wait_for_url(f"{live_server.url}/audits/")
    assert "Confirmed recorded for Grace Kim" in page.locator("#messages").inner_text()
    assert "Grace Kim" not in page.locator("#queue").inner_text()
    deal = Deal.objects.get(pk=queued_audit.deal_id)
    assert deal.stage == Stage.AUDIT_CONFIRMED
    attempt = CallAttempt.objects.get()
    assert attempt.recording_ref == "https://pbx.example/rec/991"
    assert attempt.script.version == 1


def test_an_auditor_records_a_dispute_and_the_deal_goes_back_to_the_rep(
    page, live_server, auditor, queued_audit
):
    _claim_from_the_queue(page, live_server, queued_audit)
    page.locator("#id_answer_identity_0").check()
    page.locator("#id_answer_purchase_1").check()  # no: never heard of it
    page.get_by_role("radio", name="Disputed").check()
    page.get_by_role("button", name="Record the outcome").click()
    # A dispute needs what the customer said; the answers are kept (htmx swap).
    assert "Write what the customer said" in page.locator("#id_notes_error").inner_text()
    assert page.locator("#id_answer_purchase_1").is_checked()
    page.get_by_label("Notes").fill("Never heard of your service.")
    page.get_by_role("button", name="Record the outcome").click()

    page.wait_for_url(f"{live_server.url}/audits/")
    audit = Audit.objects.get(pk=queued_audit.pk)
    assert audit.state == AuditState.DISPUTED and audit.escalated_at is not None
    assert Deal.objects.get(pk=audit.deal_id).stage == Stage.DEPOSIT
    assert CallAttempt.objects.get().outcome == Outcome.DISPUTED


def test_the_queue_refreshes_itself_when_an_audit_is_queued(
    page, live_server, rep, auditor, queued_audit
):
    log_in(page, live_server, "auditor")
    page.goto(f"{live_server.url}/audits/")
    page.evaluate("window.__noReload = true")
    assert "Ben Carter" not in page.locator("#queue").inner_text()
    customer = CustomerFactory(owner=rep, name="Ben Carter")
    deal = DealFactory(rep=rep, customer=customer, stage=Stage.DEPOSIT)
    services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **checklist())
    # The poll also fires when the tab becomes visible again.
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.locator("#queue", has_text="Ben Carter").wait_for()
    assert page.evaluate("window.__noReload") is True
