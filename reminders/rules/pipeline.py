"""The rules read from the pipeline's own facts: post-sale check-in, deposit
missing, delivery overdue, satisfaction check, next step due, stale deal.

Their facts are the deal's own columns and its latest touch, loaded for every
deal by ``reminders.facts``."""

from datetime import UTC, timedelta

from pipeline.stages import CLOSED_STAGES, Stage
from reminders.models import ReminderKind
from reminders.rules.base import (
    ONCE,
    REP,
    Facts,
    Gone,
    Known,
    Rule,
    Want,
    Window,
    day_text,
    iso_day,
    morning_of,
    setting_days,
    setting_hours,
)
from reminders.rules.receivables import promise_carries_next_step


def is_open(f: Facts) -> bool:
    return f.stage not in CLOSED_STAGES


def _touched_after(delta: timedelta):
    """Gone when the deal has a touch later than the reminder's ``due_at - delta``."""
    return lambda f, known: f.touched_after(known.due_at - delta)


def latest_touch_author(f: Facts) -> int | None:
    return f.last_touch_author_id


# --- post-sale check-in -------------------------------------------------------------


def _check_in(f: Facts, window: Window):
    if is_open(f) and f.promised_at is not None:
        yield Want(
            ONCE,
            f.promised_at + setting_hours("REMINDERS_CHECK_IN_HOURS"),
            lambda: (
                f"Promised {day_text(f.promised_at)}: check in, make them feel good "
                "about their decision."
            ),
        )


CHECK_IN = Rule(
    kind=ReminderKind.CHECK_IN,
    owner=REP,
    wants=_check_in,
    gone=(
        # A touch after the promise day is the check-in.
        Gone(
            _touched_after(setting_hours("REMINDERS_CHECK_IN_HOURS") / 2),
            "Checked in: a touch was recorded.",
            by=latest_touch_author,
        ),
    ),
)


# --- deposit missing ----------------------------------------------------------------


def _deposit_days() -> timedelta:
    # Billing's setting: how many days after the promise a required deposit is expected.
    return setting_days("CLEARED_DEPOSIT_EXPECTED_DAYS", 3)


def _deposit_missing(f: Facts, window: Window):
    if f.stage == Stage.PROMISED and f.deposit_required and f.promised_at is not None:
        yield Want(
            ONCE,
            f.promised_at + _deposit_days(),
            lambda: (
                f"Deposit required since the promise on {day_text(f.promised_at)}: none received."
            ),
        )


DEPOSIT_MISSING = Rule(
    kind=ReminderKind.DEPOSIT_MISSING,
    owner=REP,
    wants=_deposit_missing,
    gone=(
        Gone(lambda f, known: f.stage != Stage.PROMISED, "Deposit is in."),
        Gone(lambda f, known: not f.deposit_required, "Deposit waived."),
    ),
)


# --- delivery overdue ---------------------------------------------------------------


def _delivery_overdue(f: Facts, window: Window):
    if is_open(f) and f.expected_delivery_date is not None and f.delivered_at is None:
        grace = setting_days("REMINDERS_DELIVERY_GRACE_DAYS")
        yield Want(
            iso_day(f.expected_delivery_date),
            morning_of(f.expected_delivery_date + grace, f.tz),
            lambda: (
                f"Delivery expected on {day_text(f.expected_delivery_date)}: not delivered yet."
            ),
        )


def _date_moved(field_name: str):
    def when(f: Facts, known: Known) -> bool:
        day = getattr(f, field_name)
        return day is not None and known.occurrence != iso_day(day)

    return when


DELIVERY_OVERDUE = Rule(
    kind=ReminderKind.DELIVERY_OVERDUE,
    owner=REP,
    wants=_delivery_overdue,
    gone=(
        Gone(lambda f, known: f.delivered_at is not None, "Delivered."),
        Gone(_date_moved("expected_delivery_date"), "Expected delivery date moved."),
    ),
)


# --- satisfaction check -------------------------------------------------------------


def _satisfaction(f: Facts, window: Window):
    if f.stage not in (Stage.LOST, Stage.WRITTEN_OFF) and f.delivered_at is not None:
        yield Want(
            ONCE,
            f.delivered_at + setting_days("REMINDERS_SATISFACTION_DAYS"),
            lambda: (
                f"Delivered on {day_text(f.delivered_at)}: check the customer is happy with it."
            ),
        )


SATISFACTION_CHECK = Rule(
    kind=ReminderKind.SATISFACTION_CHECK,
    owner=REP,
    wants=_satisfaction,
    gone=(
        Gone(
            _touched_after(setting_days("REMINDERS_SATISFACTION_DAYS")),
            "Customer contacted after delivery.",
            by=latest_touch_author,
        ),
    ),
    # Paid is no reason to skip asking whether they are happy.
    ends_with_deal=False,
)


# --- next step due ------------------------------------------------------------------


def _next_step(f: Facts, window: Window):
    # "Chase again after the promised day" is the promise-passed reminder's to say.
    if is_open(f) and f.next_step_date is not None and not promise_carries_next_step(f):
        yield Want(
            iso_day(f.next_step_date),
            morning_of(f.next_step_date, f.tz),
            lambda: f"Next step for {day_text(f.next_step_date)}: {f.next_step}",
        )


NEXT_STEP_DUE = Rule(
    kind=ReminderKind.NEXT_STEP_DUE,
    owner=REP,
    wants=_next_step,
    gone=(
        Gone(
            _date_moved("next_step_date"),
            "A touch set a new next step.",
            by=latest_touch_author,
        ),
    ),
)


# --- stale deal ---------------------------------------------------------------------


def _stale(f: Facts, window: Window):
    if not is_open(f) or f.promised_at is None:
        return
    stale = setting_days("REMINDERS_STALE_DAYS")
    last_activity = f.last_touch_at or f.promised_at
    yield Want(
        last_activity.astimezone(UTC).date().isoformat(),
        last_activity + stale,
        lambda: f"No touch since {day_text(last_activity)}: always have a reason to call back.",
    )


STALE_DEAL = Rule(
    kind=ReminderKind.STALE_DEAL,
    owner=REP,
    wants=_stale,
    gone=(
        Gone(
            _touched_after(setting_days("REMINDERS_STALE_DAYS")),
            "A touch was recorded.",
            by=latest_touch_author,
        ),
    ),
)
