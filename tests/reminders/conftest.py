import datetime

import pytest
from django.utils import timezone

from reminders.models import ReminderKind, ReminderState
from tests.factories import ReminderFactory


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.REMINDERS_LOOKAHEAD_HOURS = 24
    settings.REMINDERS_CATCHUP_DAYS = 14
    settings.REMINDERS_HOVER_HOURS = 24
    settings.REMINDERS_MORNING_HOUR = 9
    settings.REMINDERS_DIGEST_MINUTES = 30
    settings.REMINDERS_POLL_SECONDS = 1


@pytest.fixture
def make_reminder(rep):
    """A reminder row (ReminderFactory), due minutes ago unless told, for tests about the panel."""
    counter = iter(range(1, 100_000))

    def make(deal, *, owner=rep, kind=ReminderKind.NEXT_STEP_DUE, due_in_minutes=-5, **fields):
        fields.setdefault("occurrence", f"test-{next(counter)}")
        fields.setdefault("state", ReminderState.DUE if due_in_minutes <= 0 else "scheduled")
        return ReminderFactory(
            deal=deal,
            kind=kind,
            owner=owner,
            due_at=timezone.now() + datetime.timedelta(minutes=due_in_minutes),
            **fields,
        )

    return make
