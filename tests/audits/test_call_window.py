"""Audit calls before their window (issue 20, section 6): an attempt before the
customer's call window opens is refused, unless the customer asked for a
call-back whose time has come; the retry refusal says the real time left."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from audits import services
from audits.models import AuditState, CallAttempt, Outcome
from tests.audits.conftest import checklist, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def later_audit(billed_deal, rep):
    """The customer's window opens in three hours."""
    start = timezone.now() + timedelta(hours=3)
    return services.wrap_up_hand_over(
        deal_id=billed_deal.pk,
        rep=rep,
        **checklist(call_window_start=start, call_window_end=start + timedelta(hours=1)),
    )


def test_no_answers_before_the_window_opens_are_refused(later_audit, auditor):
    for _ in range(3):
        with pytest.raises(services.AuditRefused, match="call window opens"):
            record(later_audit, auditor, Outcome.NO_ANSWER)
    later_audit.refresh_from_db()
    assert later_audit.state == AuditState.QUEUED
    assert later_audit.no_answer_count == 0
    assert not CallAttempt.objects.exists()


def test_the_refusal_says_when_the_window_opens(later_audit):
    refusal = services.call_window_refusal(later_audit)
    assert "in 3 h 00 min" in refusal
    assert "call-back" in refusal


def test_a_call_in_the_window_is_recorded(later_audit, auditor):
    record(later_audit, auditor, Outcome.NO_ANSWER, now=later_audit.call_window_start)
    later_audit.refresh_from_db()
    assert later_audit.state == AuditState.RETRY


def test_a_call_back_the_customer_asked_for_may_come_before_the_window(later_audit, auditor):
    asked = timezone.now() + timedelta(minutes=30)
    # The customer rang in and asked to be called back at a time before their window.
    later_audit.callback_at = asked
    later_audit.save(update_fields=["callback_at"])
    assert services.call_window_refusal(later_audit, now=asked) is None
    assert services.call_window_refusal(later_audit, now=asked - timedelta(minutes=1))


@override_settings(CLEARED_AUDIT_RETRY_MINUTES=60)
def test_the_retry_refusal_says_the_real_time_left(audit, auditor):
    first = timezone.now()
    record(audit, auditor, Outcome.NO_ANSWER, now=first)
    audit.refresh_from_db()
    refusal = services.no_answer_refusal(audit, now=first + timedelta(minutes=13))
    assert "recorded 13 minutes ago" in refusal
    assert "in 47 minutes" in refusal
    assert "less than" not in refusal
