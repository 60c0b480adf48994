"""The audit as people use it: in headless Chromium, through the real pages."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audits import services
from audits.models import Audit, AuditState, CallAttempt, DisputeDecision, Outcome
from pipeline.models import Deal
from pipeline.stages import Stage
from reminders.models import Reminder, ReminderKind
from reminders.services import reminders_scan
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
    # Nothing is assumed: the window and the number start empty, to be typed
    # as the customer confirms them (the known number is shown as a hint).
    assert page.get_by_label("Confirmed phone number").input_value() == ""
    assert page.get_by_label("Call window from").input_value() == ""
    assert customer.phone in page.locator("#id_confirmed_phone_helptext").inner_text()
    start = timezone.localtime() + timedelta(minutes=15)
    page.get_by_label("Call window from").fill(f"{start:%Y-%m-%dT%H:%M}")
    page.get_by_label("Call window until").fill(f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M}")
    page.get_by_label("Confirmed phone number").fill(customer.phone)

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
    # What Confirmed needs is said next to it, before submitting.
    page.get_by_role("radio", name="Confirmed — every question above answered Yes").check()
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


def _shot(page, name: str) -> None:
    """Screenshots for the reviewer, into the folder CLEARED_SHOTS names (if set)."""
    if folder := os.environ.get("CLEARED_SHOTS"):
        Path(folder).mkdir(exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_a_dispute_from_the_auditors_call_to_the_managers_decision_and_the_reps_reminder(
    browser, live_server, rep, manager, auditor, queued_audit
):
    def as_(username):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        page = context.new_page()
        log_in(page, live_server, username)
        return page

    # The auditor hears "never heard of your service".
    page = as_("auditor")
    page.goto(f"{live_server.url}/audits/{queued_audit.pk}/call/")
    page.get_by_role("button", name="Claim this call").click()
    page.wait_for_url(f"{live_server.url}/audits/{queued_audit.pk}/call/")
    assert "every question above answered Yes" in page.locator("#call-body").inner_text()
    _shot(page, "call-screen")
    page.locator("#id_answer_identity_0").check()
    page.locator("#id_answer_purchase_1").check()
    page.get_by_role("radio", name="Disputed").check()
    page.get_by_label("Notes").fill("Never heard of your service.")
    page.get_by_role("button", name="Record the outcome").click()
    page.wait_for_url(f"{live_server.url}/audits/")
    deal = Deal.objects.get(pk=queued_audit.deal_id)
    assert deal.is_disputed
    reminders_scan(deal_ids=[deal.pk])  # what the worker does on commit

    # The rep: the reminder on their dashboard, the deal stopped.
    rep_page = as_("rep")
    panel = rep_page.locator("#reminders-panel")
    assert "Disputed at audit" in panel.inner_text()
    rep_page.goto(f"{live_server.url}{deal.get_absolute_url()}")
    body = rep_page.locator("#deal-body").inner_text()
    assert "Disputed at audit — awaiting the manager" in body
    assert "Never heard of your service." in body
    assert "Issue an invoice" not in body and "Wrap up and hand to audit" not in body
    _shot(rep_page, "deal-disputed-as-rep")

    # The manager: from the reminder to the decision page, decides with a reason.
    boss = as_("manager")
    boss.goto(f"{live_server.url}{deal.get_absolute_url()}")
    _shot(boss, "deal-disputed-as-manager")
    boss.goto(f"{live_server.url}/")
    boss.locator("#reminders-panel").get_by_role("link", name="Decide").first.click()
    boss.wait_for_url(f"{live_server.url}/audits/deals/{deal.pk}/dispute/")
    _shot(boss, "dispute-decision")
    boss.get_by_role("radio", name="Send it back to the rep to re-close", exact=False).check()
    boss.get_by_role("button", name="Record the decision").click()
    assert "Say why" in boss.locator(".field-error").inner_text()  # a reason is required
    boss.get_by_label("Why").fill("Their CFO ordered it: re-close with her.")
    boss.get_by_role("button", name="Record the decision").click()
    boss.wait_for_url(f"{live_server.url}{deal.get_absolute_url()}")
    assert "Dispute decided" in boss.locator("ol.timeline").first.inner_text()
    audit = Audit.objects.get(pk=queued_audit.pk)
    assert audit.decision == DisputeDecision.RE_CLOSE and audit.decided_by == manager

    # Back with the rep: the dispute reminder is answered, the wrap-up is offered again.
    reminders_scan(deal_ids=[deal.pk])
    assert not Reminder.objects.filter(
        deal=deal, kind=ReminderKind.AUDIT_DISPUTED, owner=rep, state__in=["due", "scheduled"]
    ).exists()
    rep_page.goto(f"{live_server.url}{deal.get_absolute_url()}")
    assert rep_page.get_by_role("button", name="Wrap up and hand to audit").is_visible()
    for p in (page, rep_page, boss):
        p.context.close()


def test_a_flake_reaches_the_reps_home(page, live_server, rep, auditor, queued_audit):
    now = timezone.now() - timedelta(hours=2)
    # The calls are made in the customer's window (none counts before it opens).
    Audit.objects.filter(pk=queued_audit.pk).update(call_window_start=now - timedelta(minutes=1))
    for _ in range(3):
        queued_audit.refresh_from_db()
        services.call_attempt_record(
            audit_id=queued_audit.pk,
            auditor=auditor,
            outcome=Outcome.NO_ANSWER,
            expected_version=queued_audit.version,
            script=services.CallScript.objects.current(),
            now=now,
        )
        queued_audit.refresh_from_db()
        now = (queued_audit.retry_at or now) + timedelta(minutes=1)
    reminders_scan(deal_ids=[queued_audit.deal_id])
    log_in(page, live_server, "rep")
    assert "Flaked at audit — re-close" in page.locator("#reminders-panel").inner_text()
    assert "Flaked at audit — re-close" in page.locator("#pipeline-board").inner_text()
    _shot(page, "rep-home-flaked")
