"""What every rule is made of: the scan's ``Window``, a ``Rule`` and its ``Gone``
conditions, and the helpers the rules of each app share."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    CharField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Cast
from django.utils.formats import date_format

from pipeline.models import Deal, User
from reminders.models import Reminder, ReminderKind

REP, MANAGER, AUDIT_QUEUE = "rep", "manager", "audit_queue"
ONCE = "once"
# What every rule's rows carry besides their own facts: the deal, who owns the
# reminder (the rep, the rep's manager) and the rep's time zone.
DEAL_ROW = {
    "deal_pk": F("pk"),
    "rep_pk": F("rep_id"),
    "manager_pk": F("rep__manager_id"),
    "tz": F("rep__time_zone"),
}


@dataclass(frozen=True)
class Window:
    """The span of time a scan looks at, read from settings once per scan."""

    now: datetime
    # A sweep looks back over the whole catch-up window; the minute's quick
    # scan only at what entered the window lately (see services.reminders_scan).
    lookback: timedelta | None = None

    @property
    def horizon(self) -> datetime:
        """Reminders falling due before this are created now ("coming today")."""
        return self.now + timedelta(hours=settings.REMINDERS_LOOKAHEAD_HOURS)

    @property
    def since(self) -> datetime:
        """How far back a scan catches up on what it missed while it was down."""
        if self.lookback is not None:
            return self.horizon - self.lookback
        return self.now - timedelta(days=settings.REMINDERS_CATCHUP_DAYS)

    @property
    def today(self) -> date:
        return self.now.astimezone(UTC).date()

    def mornings(self, field_name: str, lag: timedelta = timedelta(0), rep: str = "rep") -> Q:
        """Deals whose date field's morning (``lag`` later) falls in this window.

        A sweep reads a range of dates (one day of slack each side covers
        every time zone); the quick scan names each (date, time zone) whose
        morning just came within the horizon, and most minutes there is none
        (an empty filter: no query at all).
        """
        if self.lookback is None:
            first, last = self.dates(lag)
            return Q(**{f"{field_name}__gte": first, f"{field_name}__lte": last})
        wanted = Q(pk__in=[])
        for zone in self.zones:
            first, last = self.dates(lag)
            day = first
            while day <= last:
                if self.since < morning_of(day + lag, zone) <= self.horizon:
                    wanted |= Q(**{field_name: day, f"{rep}__time_zone": zone})
                day += timedelta(days=1)
        return wanted

    @cached_property
    def zones(self) -> list[str]:
        """The time zones people work in (a morning is the owner's morning)."""
        return list(User.objects.order_by().values_list("time_zone", flat=True).distinct())

    def morning_days(self, lag: timedelta = timedelta(0)) -> set[date]:
        """Fact dates whose morning (``lag`` later), in some zone, falls in this window."""
        first, last = self.dates(lag)
        found = set()
        day = first
        while day <= last:
            if any(self.since < morning_of(day + lag, zone) <= self.horizon for zone in self.zones):
                found.add(day)
            day += timedelta(days=1)
        return found

    def dates(self, lag: timedelta = timedelta(0)) -> tuple[date, date]:
        """The range of fact dates whose reminders (``lag`` later) fall in the window.

        One day of slack each side covers every time zone's morning.
        """
        first = (self.since - lag).astimezone(UTC).date() - timedelta(days=1)
        last = (self.horizon - lag).astimezone(UTC).date() + timedelta(days=1)
        return first, last


@dataclass(frozen=True)
class Gone:
    """One way a reminder's cause goes away, and what is recorded when it does."""

    # A condition on the open Reminder row (joins through ``deal__`` allowed).
    when: Callable[[], Q | Exists]
    resolution: str
    # The person who made the cause go away, as an expression on the reminder
    # (e.g. the author of the latest touch); None: whoever triggered the scan.
    by: Callable[[], object] | None = None


@dataclass(frozen=True)
class Rule:
    kind: ReminderKind
    owner: str
    find: Callable[[Window, list[int] | None], QuerySet]
    due: Callable[[dict], datetime]
    why: Callable[[dict], str]
    gone: tuple[Gone, ...] = field(default=())
    # A closed deal (paid, lost, written off) ends the reminder unless said otherwise.
    ends_with_deal: bool = True
    # Day-granular and costly to find (the latest touch of every open deal):
    # looked for by the hourly sweep and on events, not by the minute's scan.
    sweep_only: bool = False
    # Its cause can arise after the date it is computed from (a deal confirmed
    # at audit two days before the cut-off): never due before it was created.
    not_due_before_created: bool = False


# --- helpers ------------------------------------------------------------------------


def morning_of(day: date, time_zone: str | None) -> datetime:
    """REMINDERS_MORNING_HOUR on ``day`` in the owner's time zone."""
    zone = ZoneInfo(time_zone or settings.DEFAULT_USER_TIME_ZONE)
    return datetime.combine(day, time(settings.REMINDERS_MORNING_HOUR), tzinfo=zone)


def day_text(value: date | datetime) -> str:
    """A fact's day as words that stay true later: 'Mon 23 Nov'."""
    day = value.astimezone(UTC).date() if isinstance(value, datetime) else value
    return date_format(day, "D j M")


def deals_for_scan(deal_ids: list[int] | None) -> QuerySet:
    deals = Deal.objects.order_by()  # no sort: the scan reads rows, not pages
    return deals if deal_ids is None else deals.filter(pk__in=deal_ids)


def without_reminder(rows: QuerySet, kind: str, deal: str = "pk") -> QuerySet:
    """Rows (annotated with ``occ``) whose deal has no reminder of this kind and occurrence."""
    existing = Reminder.objects.filter(deal=OuterRef(deal), kind=kind, occurrence=OuterRef("occ"))
    return rows.filter(~Exists(existing))


def text_value(text: str):
    return Value(text, output_field=CharField())


def iso_text(field_name: str):
    """A date column as its ISO text ('2026-11-22'), the same on SQLite and PostgreSQL."""
    return Cast(F(field_name), CharField())


def setting_hours(name: str) -> timedelta:
    return timedelta(hours=getattr(settings, name))


def setting_days(name: str, default: int | None = None) -> timedelta:
    return timedelta(days=getattr(settings, name, default))
