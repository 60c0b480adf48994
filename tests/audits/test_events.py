"""Audit outcomes announce deal_changed (the reminders of the audit queue follow)."""

import pytest

from audits import services
from audits.models import Outcome
from tests.audits.conftest import YES, checklist, record
from tests.events import announced

pytestmark = pytest.mark.django_db


def test_handing_a_deal_to_audit_announces_it(billed_deal, rep):
    with announced() as sent:
        services.wrap_up_hand_over(deal_id=billed_deal.pk, rep=rep, **checklist())
    assert sent == [(billed_deal.pk, rep.pk)]


@pytest.mark.parametrize("outcome", [Outcome.CONFIRMED, Outcome.NO_ANSWER, Outcome.DECLINED])
def test_an_audit_outcome_announces_the_deal_once(audit, auditor, outcome):
    extra = {"answers": YES} if outcome == Outcome.CONFIRMED else {}
    if outcome == Outcome.DECLINED:
        extra["notes"] = "Changed their mind."
    with announced() as sent:
        record(audit, auditor, outcome, **extra)
    assert sent == [(audit.deal_id, auditor.pk)]
