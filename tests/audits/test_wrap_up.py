from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audits import services
from audits.models import Audit, AuditState, Outcome, WrapUpChecklist
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from tests.audits.conftest import checklist, record
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db

BOXES = [
    "customer_will_answer",
    "rep_gave_contact",
    "call_time_reconfirmed",
    "reconfirmed_third_time",
]


def test_a_complete_checklist_queues_the_deal_for_audit(billed_deal, rep):
    audit = services.wrap_up_hand_over(deal_id=billed_deal.pk, rep=rep, **checklist())
    assert audit.state == AuditState.QUEUED
    assert audit.next_call_at == audit.call_window_start == audit.wrap_up.call_window_start
    assert audit.wrap_up.completed_by == rep
    assert audit.wrap_up.concerns == "none"


@pytest.mark.parametrize("box", BOXES)
def test_an_unticked_box_queues_nothing(billed_deal, rep, box):
    with pytest.raises(services.AuditRefused) as refused:
        services.wrap_up_hand_over(deal_id=billed_deal.pk, rep=rep, **checklist(**{box: False}))
    assert refused.value.field == box
    assert not Audit.objects.exists() and not WrapUpChecklist.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("concerns", "  ", "concerns"),
        ("confirmed_phone", "", "number"),
    ],
)
def test_missing_answers_queue_nothing(billed_deal, rep, field, value, message):
    with pytest.raises(services.AuditRefused, match=message):
        services.wrap_up_hand_over(deal_id=billed_deal.pk, rep=rep, **checklist(**{field: value}))
    assert not Audit.objects.exists()


def test_a_window_that_is_over_or_backwards_is_refused(billed_deal, rep):
    now = timezone.now()
    with pytest.raises(services.AuditRefused, match="already over"):
        services.wrap_up_hand_over(
            deal_id=billed_deal.pk,
            rep=rep,
            **checklist(call_window_start=now - timedelta(hours=2), call_window_end=now),
        )
    with pytest.raises(services.AuditRefused, match="end after it starts"):
        services.wrap_up_hand_over(
            deal_id=billed_deal.pk,
            rep=rep,
            **checklist(call_window_start=now + timedelta(hours=2), call_window_end=now),
        )
    assert not Audit.objects.exists()


def test_an_upfront_card_deal_is_never_audited(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, payment_option=PaymentOption.UPFRONT)
    assert "needs no audit" in services.wrap_up_refusal(deal)
    with pytest.raises(services.AuditRefused):
        services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **checklist())


def test_a_required_deposit_comes_before_the_audit(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=True, stage=Stage.PROMISED)
    assert "must reach Deposit" in services.wrap_up_refusal(deal)


def test_an_invoice_deal_without_a_deposit_is_wrapped_up_straight_from_promised(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.PROMISED)
    assert services.wrap_up_refusal(deal) is None


def test_a_deal_is_queued_once_at_a_time(audit, rep):
    with pytest.raises(services.AuditRefused, match="already in the audit queue"):
        services.wrap_up_hand_over(deal_id=audit.deal_id, rep=rep, **checklist())
    assert Audit.objects.count() == 1


def test_a_deal_is_wrapped_up_again_after_a_dispute_and_the_old_audit_stays(
    audit, rep, auditor, manager
):
    record(audit, auditor, Outcome.DISPUTED, notes="Never heard of you")
    services.audit_dispute_decide(
        audit_id=audit.pk, manager=manager, decision="re_close", reason="Re-close with the CFO."
    )
    again = services.wrap_up_hand_over(deal_id=audit.deal_id, rep=rep, **checklist())
    assert again.pk != audit.pk and again.state == AuditState.QUEUED
    audit.refresh_from_db()
    assert audit.state == AuditState.DISPUTED
    assert Audit.objects.filter(deal=audit.deal).count() == 2


def test_verification_records_are_never_deleted(audit):
    with pytest.raises(TypeError):
        audit.delete()
    with pytest.raises(TypeError):
        audit.wrap_up.delete()
    with pytest.raises(TypeError):
        Audit.objects.all().delete()


# --- The form and the page -----------------------------------------------------


def _post_data(**overrides) -> dict:
    now = timezone.localtime()
    data = {
        "call_window_start": (now + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M"),
        "call_window_end": (now + timedelta(minutes=70)).strftime("%Y-%m-%dT%H:%M"),
        "confirmed_phone": "+1 555 0199",
        "customer_will_answer": "on",
        "rep_gave_contact": "on",
        "concerns": "Wants the invoice by the 25th",
        "call_time_reconfirmed": "on",
        "reconfirmed_third_time": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_the_rep_wraps_up_from_the_deal_page(rep_client, billed_deal):
    page = rep_client.get(billed_deal.get_absolute_url())
    assert b"Wrap up and hand to audit" in page.content
    url = reverse("audits:wrap_up", args=[billed_deal.pk])
    form = rep_client.get(url)
    assert form.status_code == 200
    assert billed_deal.customer.phone.encode() in form.content  # the number to read back
    response = rep_client.post(url, _post_data())
    assert response.status_code == 302 and response["Location"] == billed_deal.get_absolute_url()
    audit = Audit.objects.get(deal=billed_deal)
    assert audit.wrap_up.concerns == "Wants the invoice by the 25th"
    page = rep_client.get(billed_deal.get_absolute_url())
    assert b"Queued" in page.content and b"Wants the invoice by the 25th" in page.content


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("customer_will_answer", None, "confirm they will pick up"),
        ("rep_gave_contact", None, "your name and direct number"),
        ("call_time_reconfirmed", None, "Reconfirm the call time"),
        ("reconfirmed_third_time", None, "third time"),
        ("concerns", "", "concerns"),
        ("confirmed_phone", "call me", "phone number"),
        ("call_window_end", "2001-01-01T10:00", "end after it starts"),
        ("call_window_start", "tomorrow", "valid date"),
    ],
)
def test_bad_wrap_up_input_comes_back_next_to_the_field_with_the_typing_kept(
    rep_client, billed_deal, field, value, message
):
    url = reverse("audits:wrap_up", args=[billed_deal.pk])
    overrides = {"concerns": "Price is firm?", field: value}
    response = rep_client.post(url, _post_data(**overrides))
    assert response.status_code == 422
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html
    assert message in html
    if field != "concerns":
        assert "Price is firm?" in html  # what was typed is kept
    assert not Audit.objects.exists()


def test_the_wrap_up_form_over_htmx_swaps_only_the_form(rep_client, billed_deal):
    url = reverse("audits:wrap_up", args=[billed_deal.pk])
    bad = rep_client.post(url, _post_data(rep_gave_contact=None), headers={"HX-Request": "true"})
    assert bad.status_code == 422
    assert b'id="wrap-up-form"' in bad.content and b"<html" not in bad.content
    good = rep_client.post(url, _post_data(), headers={"HX-Request": "true"})
    assert good.status_code == 200
    assert good["HX-Redirect"] == billed_deal.get_absolute_url()


def test_an_upfront_deal_offers_no_wrap_up(rep_client, rep, customer):
    deal = DealFactory(rep=rep, customer=customer, payment_option=PaymentOption.UPFRONT)
    assert b"Wrap up and hand to audit" not in rep_client.get(deal.get_absolute_url()).content
    response = rep_client.post(reverse("audits:wrap_up", args=[deal.pk]), _post_data())
    assert response.status_code == 422 and b"needs no audit" in response.content
    assert not Audit.objects.exists()
