"""Segregation of duties: every boundary, through forged requests. Nothing changes."""

import pytest
from django.urls import reverse

from audits import services
from audits.models import Audit, AuditState, CallAttempt, Outcome
from pipeline.models import Deal, Role
from pipeline.stages import Stage
from tests.audits.conftest import YES, checklist
from tests.conftest import _client_for
from tests.factories import CustomerFactory, DealFactory, UserFactory

pytestmark = pytest.mark.django_db


def _outcome_post(audit, outcome=Outcome.CONFIRMED) -> dict:
    data = {"outcome": outcome, "version": audit.version, "script_version": 1, "notes": "x"}
    data.update({f"answer_{key}": value for key, value in YES.items()})
    return data


def _assert_unchanged(audit):
    fresh = Audit.objects.get(pk=audit.pk)
    assert (fresh.state, fresh.version, fresh.claimed_by_id) == (AuditState.QUEUED, 1, None)
    assert not CallAttempt.objects.exists()
    assert Deal.objects.get(pk=audit.deal_id).stage == Stage.DEPOSIT


@pytest.fixture
def selling_auditor(db, manager):
    """Someone who both sells and audits: they must never audit their own sale."""
    user = UserFactory(username="sells_and_audits", role=Role.AUDITOR, manager=manager)
    user.groups.add(*UserFactory(username="tmp", role=Role.REP).groups.all())
    return user


@pytest.fixture
def own_sale_audit(selling_auditor):
    customer = CustomerFactory(owner=selling_auditor)
    deal = DealFactory(rep=selling_auditor, customer=customer, stage=Stage.DEPOSIT)
    return services.wrap_up_hand_over(deal_id=deal.pk, rep=selling_auditor, **checklist())


def test_an_auditor_never_sees_their_own_sale_in_the_queue(own_sale_audit, selling_auditor):
    client = _client_for(selling_auditor)
    assert own_sale_audit.deal.customer.name.encode() not in client.get("/audits/").content


def test_an_auditor_cannot_open_claim_or_record_their_own_sale(own_sale_audit, selling_auditor):
    client = _client_for(selling_auditor)
    pk = own_sale_audit.pk
    assert client.get(reverse("audits:call", args=[pk])).status_code == 404
    assert client.post(reverse("audits:claim", args=[pk])).status_code == 404
    forged = client.post(reverse("audits:attempt_new", args=[pk]), _outcome_post(own_sale_audit))
    assert forged.status_code == 404
    _assert_unchanged(own_sale_audit)


def test_the_service_refuses_an_auditor_on_their_own_sale(own_sale_audit, selling_auditor):
    with pytest.raises(services.NotAllowed, match="You sold this deal"):
        services.audit_claim(audit_id=own_sale_audit.pk, auditor=selling_auditor)
    with pytest.raises(services.NotAllowed):
        services.call_attempt_record(
            audit_id=own_sale_audit.pk,
            auditor=selling_auditor,
            outcome=Outcome.CONFIRMED,
            answers=YES,
            expected_version=1,
            script=services.CallScript.objects.current(),
        )
    _assert_unchanged(own_sale_audit)


@pytest.mark.parametrize("persona", ["rep_client", "manager_client", "other_rep_client"])
def test_a_rep_or_manager_cannot_record_or_claim_an_outcome(request, audit, persona):
    client = request.getfixturevalue(persona)
    response = client.post(reverse("audits:attempt_new", args=[audit.pk]), _outcome_post(audit))
    assert response.status_code == 403
    assert client.post(reverse("audits:claim", args=[audit.pk])).status_code == 403
    assert client.get(reverse("audits:call", args=[audit.pk])).status_code == 403
    assert client.get(reverse("audits:queue")).status_code == 403
    _assert_unchanged(audit)


def test_the_service_refuses_an_outcome_from_a_rep_or_manager(audit, rep, manager):
    for person in (rep, manager):
        with pytest.raises(services.NotAllowed, match="Only an auditor"):
            services.call_attempt_record(
                audit_id=audit.pk,
                auditor=person,
                outcome=Outcome.CONFIRMED,
                answers=YES,
                expected_version=1,
                script=services.CallScript.objects.current(),
            )
    _assert_unchanged(audit)


def test_a_manager_reads_the_outcome_on_the_deal_page_but_has_no_way_to_change_it(
    audit, auditor, manager_client
):
    from tests.audits.conftest import record

    record(audit, auditor, Outcome.DISPUTED, notes="Never heard of your service")
    page = manager_client.get(audit.deal.get_absolute_url())
    assert page.status_code == 200
    assert b"Disputed" in page.content and b"Never heard of your service" in page.content
    assert reverse("audits:attempt_new", args=[audit.pk]).encode() not in page.content


def test_another_auditors_claimed_audit_cannot_be_taken_or_recorded(
    audit, auditor, second_auditor_client
):
    services.audit_claim(audit_id=audit.pk, auditor=auditor)
    client = second_auditor_client
    claim = client.post(reverse("audits:claim", args=[audit.pk]))
    assert claim.status_code == 302
    forged = client.post(reverse("audits:attempt_new", args=[audit.pk]), _outcome_post(audit))
    assert forged.status_code == 409
    assert b"has claimed this audit" in forged.content
    fresh = Audit.objects.get(pk=audit.pk)
    assert fresh.claimed_by == auditor and fresh.state == AuditState.QUEUED
    assert not CallAttempt.objects.exists()


def test_the_call_screen_of_another_auditors_claim_shows_no_outcome_form(
    audit, auditor, second_auditor_client
):
    services.audit_claim(audit_id=audit.pk, auditor=auditor)
    page = second_auditor_client.get(reverse("audits:call", args=[audit.pk]))
    assert page.status_code == 200
    assert b"is calling this customer" in page.content
    assert b'name="outcome"' not in page.content


def test_auditors_never_see_deal_pages(auditor_client, audit):
    assert auditor_client.get(audit.deal.get_absolute_url()).status_code == 404
    assert auditor_client.get(reverse("audits:wrap_up", args=[audit.deal_id])).status_code == 404


def test_an_auditor_cannot_wrap_up_a_deal(auditor_client, billed_deal):
    response = auditor_client.post(reverse("audits:wrap_up", args=[billed_deal.pk]), {})
    assert response.status_code == 404
    assert not Audit.objects.exists()


def test_a_rep_cannot_wrap_up_another_reps_deal(other_rep_client, billed_deal):
    response = other_rep_client.get(reverse("audits:wrap_up", args=[billed_deal.pk]))
    assert response.status_code == 404


def test_only_managers_read_the_audit_report(rep_client, auditor_client, manager_client):
    assert rep_client.get(reverse("audits:report")).status_code == 403
    assert auditor_client.get(reverse("audits:report")).status_code == 403
    assert manager_client.get(reverse("audits:report")).status_code == 200


def test_a_rep_can_no_longer_click_audit_confirmed(rep_client, billed_deal):
    response = rep_client.post(
        reverse("deal_move", args=[billed_deal.pk]),
        {"to_stage": Stage.AUDIT_CONFIRMED, "version": billed_deal.version},
    )
    assert response.status_code == 422
    assert b"set by Cleared from the facts" in response.content
    assert Deal.objects.get(pk=billed_deal.pk).stage == Stage.DEPOSIT
