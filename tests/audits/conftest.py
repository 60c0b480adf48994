from datetime import timedelta

import pytest
from django.utils import timezone

from audits import services
from audits.models import Audit, CallScript
from pipeline.models import Role
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from tests.conftest import _client_for
from tests.factories import DealFactory, UserFactory

YES = dict.fromkeys(("identity", "purchase", "price", "terms", "right_to_cancel"), "yes")


def checklist(**overrides) -> dict:
    """A complete wrap-up checklist, as the service takes it; window open now."""
    now = timezone.now()
    values = {
        "call_window_start": now - timedelta(minutes=5),
        "call_window_end": now + timedelta(minutes=55),
        "confirmed_phone": "+1 555 0199",
        "customer_will_answer": True,
        "rep_gave_contact": True,
        "concerns": "none",
        "call_time_reconfirmed": True,
        "reconfirmed_third_time": True,
    }
    values.update(overrides)
    return values


@pytest.fixture
def billed_deal(rep, customer):
    """An invoice deal whose deposit is in: ready to wrap up and hand to audit."""
    return DealFactory(
        rep=rep, customer=customer, stage=Stage.DEPOSIT, payment_option=PaymentOption.INVOICE
    )


@pytest.fixture
def second_auditor(db):
    return UserFactory(username="auditor2", first_name="Blake", role=Role.AUDITOR)


@pytest.fixture
def second_auditor_client(second_auditor):
    return _client_for(second_auditor)


@pytest.fixture
def audit(billed_deal, rep) -> Audit:
    return services.wrap_up_hand_over(deal_id=billed_deal.pk, rep=rep, **checklist())


@pytest.fixture
def script(db) -> CallScript:
    return CallScript.objects.current()


def record(audit: Audit, auditor, outcome: str, **kwargs):
    """Record an attempt on the audit's current version with the current script."""
    audit.refresh_from_db()
    kwargs.setdefault("script", CallScript.objects.current())
    kwargs.setdefault("expected_version", audit.version)
    return services.call_attempt_record(
        audit_id=audit.pk, auditor=auditor, outcome=outcome, **kwargs
    )
