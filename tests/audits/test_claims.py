from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from audits import services
from audits.models import Audit, CallAttempt, Outcome
from tests.audits.conftest import record

pytestmark = pytest.mark.django_db


@override_settings(CLEARED_AUDIT_CLAIM_MINUTES=10)
def test_an_auditor_claims_an_audit_for_a_while(audit, auditor):
    now = timezone.now()
    claimed = services.audit_claim(audit_id=audit.pk, auditor=auditor, now=now)
    assert claimed.claimed_by == auditor
    assert claimed.claim_expires_at == now + timedelta(minutes=10)
    assert claimed.is_claimed_by(auditor, now)


def test_a_second_auditor_cannot_claim_a_claimed_audit(audit, auditor, second_auditor):
    services.audit_claim(audit_id=audit.pk, auditor=auditor)
    with pytest.raises(services.AuditChanged, match="already calling"):
        services.audit_claim(audit_id=audit.pk, auditor=second_auditor)
    assert Audit.objects.get(pk=audit.pk).claimed_by == auditor


def test_an_abandoned_claim_expires_and_another_auditor_takes_it(audit, auditor, second_auditor):
    now = timezone.now()
    services.audit_claim(audit_id=audit.pk, auditor=auditor, now=now)
    later = now + timedelta(minutes=16)
    assert not Audit.objects.get(pk=audit.pk).claim_is_live(later)
    taken = services.audit_claim(audit_id=audit.pk, auditor=second_auditor, now=later)
    assert taken.claimed_by == second_auditor


def test_claiming_again_renews_ones_own_claim(audit, auditor):
    now = timezone.now()
    services.audit_claim(audit_id=audit.pk, auditor=auditor, now=now)
    renewed = services.audit_claim(
        audit_id=audit.pk, auditor=auditor, now=now + timedelta(minutes=5)
    )
    assert renewed.claim_expires_at == now + timedelta(minutes=20)


def test_a_released_claim_frees_the_audit(audit, auditor, second_auditor):
    services.audit_claim(audit_id=audit.pk, auditor=auditor)
    assert not services.audit_release(audit_id=audit.pk, auditor=second_auditor)
    assert services.audit_release(audit_id=audit.pk, auditor=auditor)
    assert services.audit_claim(audit_id=audit.pk, auditor=second_auditor).claimed_by == (
        second_auditor
    )


def test_a_closed_audit_cannot_be_claimed(audit, auditor):
    record(audit, auditor, Outcome.DISPUTED, notes="Never heard of you")
    with pytest.raises(services.AuditChanged, match="closed"):
        services.audit_claim(audit_id=audit.pk, auditor=auditor)


def test_an_outcome_is_refused_while_another_auditor_holds_the_claim(
    audit, auditor, second_auditor
):
    services.audit_claim(audit_id=audit.pk, auditor=auditor)
    with pytest.raises(services.AuditChanged, match="has claimed"):
        record(audit, second_auditor, Outcome.NO_ANSWER)
    assert not CallAttempt.objects.exists()


def test_recording_an_outcome_releases_the_claim(audit, auditor):
    services.audit_claim(audit_id=audit.pk, auditor=auditor)
    record(audit, auditor, Outcome.NO_ANSWER)
    assert Audit.objects.get(pk=audit.pk).claimed_by is None


def test_an_auditor_whose_claim_lapsed_may_still_record_the_call_they_made(audit, auditor):
    now = timezone.now()
    services.audit_claim(audit_id=audit.pk, auditor=auditor, now=now - timedelta(hours=1))
    record(audit, auditor, Outcome.NO_ANSWER, now=now)
    assert CallAttempt.objects.count() == 1


def test_claiming_from_the_queue_says_the_call_is_yours_and_until_when(audit, auditor_client):
    response = auditor_client.post(f"/audits/{audit.pk}/claim/", follow=True)
    assert response.status_code == 200
    assert "This call is yours until" in response.text
    assert "Claimed by you until" in response.text
