"""The rules read from the pipeline's own facts: post-sale check-in, deposit
missing, delivery overdue, satisfaction check, next step due, stale deal."""

from datetime import UTC, timedelta

from django.db.models import (
    CharField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Cast, Coalesce, TruncDate

from pipeline.models import Touch
from pipeline.stages import Stage
from reminders.models import ReminderKind
from reminders.rules.base import (
    DEAL_ROW,
    ONCE,
    REP,
    Gone,
    Rule,
    Window,
    day_text,
    deals_for_scan,
    iso_text,
    morning_of,
    setting_days,
    setting_hours,
    text_value,
    without_reminder,
)


def _touched_after(delta: timedelta) -> Exists:
    """The deal has a touch later than the reminder's ``due_at - delta``."""
    later = Touch.objects.filter(
        deal_id=OuterRef("deal_id"), happened_at__gt=OuterRef("due_at") - delta
    )
    return Exists(later)


def _latest_touch_author():
    return Subquery(
        Touch.objects.filter(deal_id=OuterRef("deal_id"))
        .order_by("-happened_at", "-id")
        .values("author_id")[:1]
    )


# --- post-sale check-in -------------------------------------------------------------


def _find_check_in(window: Window, deal_ids: list[int] | None) -> QuerySet:
    delay = setting_hours("REMINDERS_CHECK_IN_HOURS")
    deals = (
        deals_for_scan(deal_ids)
        .open()
        .filter(promised_at__gt=window.since - delay, promised_at__lte=window.horizon - delay)
    )
    return without_reminder(deals.annotate(occ=text_value(ONCE)), ReminderKind.CHECK_IN).values(
        "promised_at", "occ", **DEAL_ROW
    )


CHECK_IN = Rule(
    kind=ReminderKind.CHECK_IN,
    owner=REP,
    find=_find_check_in,
    due=lambda row: row["promised_at"] + setting_hours("REMINDERS_CHECK_IN_HOURS"),
    why=lambda row: (
        f"Promised {day_text(row['promised_at'])}: check in, make them feel good "
        "about their decision."
    ),
    gone=(
        # A touch after the promise day is the check-in.
        Gone(
            lambda: _touched_after(setting_hours("REMINDERS_CHECK_IN_HOURS") / 2),
            "Checked in: a touch was recorded.",
            by=_latest_touch_author,
        ),
    ),
)


# --- deposit missing ----------------------------------------------------------------


def _deposit_days() -> timedelta:
    # Billing's setting: how many days after the promise a required deposit is expected.
    return setting_days("CLEARED_DEPOSIT_EXPECTED_DAYS", 3)


def _find_deposit_missing(window: Window, deal_ids: list[int] | None) -> QuerySet:
    delay = _deposit_days()
    deals = deals_for_scan(deal_ids).filter(
        stage=Stage.PROMISED,
        deposit_required=True,
        promised_at__gt=window.since - delay,
        promised_at__lte=window.horizon - delay,
    )
    return without_reminder(
        deals.annotate(occ=text_value(ONCE)), ReminderKind.DEPOSIT_MISSING
    ).values("promised_at", "occ", **DEAL_ROW)


DEPOSIT_MISSING = Rule(
    kind=ReminderKind.DEPOSIT_MISSING,
    owner=REP,
    find=_find_deposit_missing,
    due=lambda row: row["promised_at"] + _deposit_days(),
    why=lambda row: (
        f"Deposit required since the promise on {day_text(row['promised_at'])}: none received."
    ),
    gone=(
        Gone(lambda: ~Q(deal__stage=Stage.PROMISED), "Deposit is in."),
        Gone(lambda: Q(deal__deposit_required=False), "Deposit waived."),
    ),
)


# --- delivery overdue ---------------------------------------------------------------


def _find_delivery_overdue(window: Window, deal_ids: list[int] | None) -> QuerySet:
    grace = setting_days("REMINDERS_DELIVERY_GRACE_DAYS")
    deals = (
        deals_for_scan(deal_ids)
        .open()
        .filter(window.mornings("expected_delivery_date", lag=grace), delivered_at__isnull=True)
    )
    occ = iso_text("expected_delivery_date")
    return without_reminder(deals.annotate(occ=occ), ReminderKind.DELIVERY_OVERDUE).values(
        "expected_delivery_date", "title", "occ", **DEAL_ROW
    )


DELIVERY_OVERDUE = Rule(
    kind=ReminderKind.DELIVERY_OVERDUE,
    owner=REP,
    find=_find_delivery_overdue,
    due=lambda row: morning_of(
        row["expected_delivery_date"] + setting_days("REMINDERS_DELIVERY_GRACE_DAYS"),
        row["tz"],
    ),
    why=lambda row: (
        f"Delivery expected on {day_text(row['expected_delivery_date'])}: not delivered yet."
    ),
    gone=(
        Gone(lambda: Q(deal__delivered_at__isnull=False), "Delivered."),
        Gone(
            lambda: ~Q(occurrence=iso_text("deal__expected_delivery_date")),
            "Expected delivery date moved.",
        ),
    ),
)


# --- satisfaction check -------------------------------------------------------------


def _find_satisfaction(window: Window, deal_ids: list[int] | None) -> QuerySet:
    delay = setting_days("REMINDERS_SATISFACTION_DAYS")
    deals = (
        deals_for_scan(deal_ids)
        .exclude(stage__in=[Stage.LOST, Stage.WRITTEN_OFF])
        .filter(delivered_at__gt=window.since - delay, delivered_at__lte=window.horizon - delay)
    )
    return without_reminder(
        deals.annotate(occ=text_value(ONCE)), ReminderKind.SATISFACTION_CHECK
    ).values("delivered_at", "occ", **DEAL_ROW)


SATISFACTION_CHECK = Rule(
    kind=ReminderKind.SATISFACTION_CHECK,
    owner=REP,
    find=_find_satisfaction,
    due=lambda row: row["delivered_at"] + setting_days("REMINDERS_SATISFACTION_DAYS"),
    why=lambda row: (
        f"Delivered on {day_text(row['delivered_at'])}: check the customer is happy with it."
    ),
    gone=(
        Gone(
            lambda: _touched_after(setting_days("REMINDERS_SATISFACTION_DAYS")),
            "Customer contacted after delivery.",
            by=_latest_touch_author,
        ),
    ),
    # Paid is no reason to skip asking whether they are happy.
    ends_with_deal=False,
)


# --- next step due ------------------------------------------------------------------


def _find_next_step(window: Window, deal_ids: list[int] | None) -> QuerySet:
    deals = deals_for_scan(deal_ids).open().filter(window.mornings("next_step_date"))
    occ = iso_text("next_step_date")
    return without_reminder(deals.annotate(occ=occ), ReminderKind.NEXT_STEP_DUE).values(
        "next_step_date", "next_step", "occ", **DEAL_ROW
    )


NEXT_STEP_DUE = Rule(
    kind=ReminderKind.NEXT_STEP_DUE,
    owner=REP,
    find=_find_next_step,
    due=lambda row: morning_of(row["next_step_date"], row["tz"]),
    why=lambda row: f"Next step for {day_text(row['next_step_date'])}: {row['next_step']}",
    gone=(
        Gone(
            lambda: ~Q(occurrence=iso_text("deal__next_step_date")),
            "A touch set a new next step.",
            by=_latest_touch_author,
        ),
    ),
)


# --- stale deal ---------------------------------------------------------------------


def _find_stale(window: Window, deal_ids: list[int] | None) -> QuerySet:
    stale = setting_days("REMINDERS_STALE_DAYS")
    last_touch = Subquery(
        Touch.objects.filter(deal=OuterRef("pk")).order_by("-happened_at").values("happened_at")[:1]
    )
    deals = (
        deals_for_scan(deal_ids)
        .open()
        .filter(promised_at__lte=window.horizon - stale)
        .annotate(last_activity=Coalesce(last_touch, F("promised_at")))
        .filter(last_activity__gt=window.since - stale, last_activity__lte=window.horizon - stale)
    )
    occ = Cast(TruncDate("last_activity", tzinfo=UTC), CharField())
    return without_reminder(deals.annotate(occ=occ), ReminderKind.STALE_DEAL).values(
        "last_activity", "occ", **DEAL_ROW
    )


STALE_DEAL = Rule(
    kind=ReminderKind.STALE_DEAL,
    sweep_only=True,
    owner=REP,
    find=_find_stale,
    due=lambda row: row["last_activity"] + setting_days("REMINDERS_STALE_DAYS"),
    why=lambda row: (
        f"No touch since {day_text(row['last_activity'])}: always have a reason to call back."
    ),
    gone=(
        Gone(
            lambda: _touched_after(setting_days("REMINDERS_STALE_DAYS")),
            "A touch was recorded.",
            by=_latest_touch_author,
        ),
    ),
)
