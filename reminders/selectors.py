"""Reads of reminders: whose they are, the home panel, the list, the badge."""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    IntegerField,
    Max,
    Min,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from pipeline.compiled import Compiled, Slot
from pipeline.models import Deal, Role, User
from reminders.models import OPEN_STATES, Reminder, ReminderQueue, ReminderState

# Which role queue each role's members share.
ROLE_QUEUES = {Role.AUDITOR: ReminderQueue.AUDIT}


def reminders_for(user: User) -> QuerySet:
    """The reminders a user sees and acts on: their own, and their role's queue.

    The roles come from ``user.role_names`` (one query per request, shared
    with the navigation), so a rep's panel is a plain index range on
    ``owner``: an OR with a queue condition would make PostgreSQL read every
    open reminder of the deployment.
    """
    return Reminder.objects.filter(_mine(user.pk, _queues_of(user)))


def _queues_of(user: User) -> tuple[str, ...]:
    return tuple(queue for role, queue in ROLE_QUEUES.items() if role in user.role_names)


def _mine(owner, queues: tuple[str, ...]) -> Q:
    mine = Q(owner_id=owner)
    for queue in queues:
        mine |= Q(owner__isnull=True, queue=queue)
    return mine


def _due_now(now: datetime) -> Q:
    return Q(state__in=[ReminderState.SCHEDULED, ReminderState.DUE], due_at__lte=now) | Q(
        state=ReminderState.SNOOZED, snoozed_until__lte=now
    )


# The nav badge counts up to this and then says "99+": a manager with 38,000
# escalations due costs the same as a rep with three, on every page.
BADGE_CAP = 99


def reminders_due_count(user: User, now: datetime | None = None) -> int:
    """How many reminders ask for the user's attention now (the nav badge, on every
    page), counted up to ``BADGE_CAP + 1`` (the badge shows "99+"; the panel and
    the list give the exact numbers).

    The two halves of ``_due_now`` are read apart: each is an index-only range of
    ``reminder_open_by_owner``, where their OR made PostgreSQL read every due row
    from the table. Built once per set of role queues (``pipeline.compiled``):
    the person and the moment are its parameters.
    """
    queues = _queues_of(user)
    return _DUE.count(queues, key=queues, owner=user.pk, now=now or timezone.now())


def _due_union(queues: tuple[str, ...]) -> QuerySet:
    mine = Reminder.objects.filter(_mine(Slot("owner", IntegerField()), queues)).order_by()
    now = Slot("now", DateTimeField())
    due = mine.filter(state__in=[ReminderState.SCHEDULED, ReminderState.DUE], due_at__lte=now)
    woken = mine.filter(state=ReminderState.SNOOZED, snoozed_until__lte=now)
    union = due.values_list("pk").union(woken.values_list("pk"), all=True).order_by()
    return union[: BADGE_CAP + 1]


_DUE = Compiled(_due_union)


def reminders_open_count(user: User) -> int:
    """How many open reminders a person owns (what a leaver would hand over)."""
    return Reminder.objects.filter(owner=user, state__in=OPEN_STATES).count()


@dataclass
class PanelSection:
    key: str
    title: str
    reminders: list = field(default_factory=list)


@dataclass
class Panel:
    sections: list[PanelSection]
    total: int
    due_count: int
    version: str

    @property
    def shown(self) -> int:
        return sum(len(section.reminders) for section in self.sections)

    @property
    def more(self) -> int:
        return self.total - self.shown


# A due reminder is marked "new" on the home for this long after it fell due
# (or woke from a snooze): when it reached the rep's list, not when the scan
# wrote the row, which is usually ahead of its time.
NEW_FOR = timedelta(hours=1)


def reminder_panel(user: User, now: datetime | None = None, version: str | None = None) -> Panel:
    """The home panel in two queries (its reminders, then their deals and customers):
    due now, overdue, coming today, snoozed.

    Due ones first, newest due first, those due within ``NEW_FOR`` marked
    ``is_new``; then the rest of today, soonest first; then those snoozed until
    later today, soonest awake first.
    The totals come from window functions over the same query, so the count
    costs nothing more whatever the numbers. ``version`` (``panel_version``,
    one more query) changes whenever what the panel shows changes: a poll that
    carries it gets an empty answer.
    """
    now = now or timezone.now()
    zone = ZoneInfo(user.time_zone or settings.DEFAULT_USER_TIME_ZONE)
    today = now.astimezone(zone).date()
    start_of_today = datetime.combine(today, time(0), tzinfo=zone)
    end_of_today = start_of_today + timedelta(days=1)
    is_due = Case(When(_due_now(now), then=Value(1)), default=Value(0), output_field=IntegerField())
    rows = list(
        reminders_for(user)
        .filter(
            Q(state__in=[ReminderState.SCHEDULED, ReminderState.DUE], due_at__lt=end_of_today)
            | Q(state=ReminderState.SNOOZED, snoozed_until__lt=end_of_today)
        )
        .annotate(
            shown=Coalesce("snoozed_until", "due_at"),
            due_now=is_due,
            total=Window(Count("id")),
            due_total=Window(Sum(is_due)),
        )
        .order_by("-due_now", "-shown", "-id")[: settings.REMINDERS_PANEL_SIZE]
        # The deals and customers of the rows shown only (a second query): joined
        # before the window, a rep with thousands of reminders today read every
        # deal of the deployment (a hash join over 1,000,000 deals: 400 ms).
        .prefetch_related(Prefetch("deal", queryset=Deal.objects.select_related("customer")))
    )
    overdue = PanelSection("overdue", "Overdue")
    due = PanelSection("due", "Due now")
    coming = PanelSection("coming", "Coming today")
    snoozed = PanelSection("snoozed", "Snoozed")
    for reminder in rows:
        reminder.is_new = bool(reminder.due_now) and reminder.shown > now - NEW_FOR
        if not reminder.due_now:
            asleep = reminder.state == ReminderState.SNOOZED
            (snoozed if asleep else coming).reminders.append(reminder)
        elif reminder.shown < start_of_today:
            overdue.reminders.append(reminder)
        else:
            due.reminders.append(reminder)
    coming.reminders.reverse()
    snoozed.reminders.reverse()
    total = rows[0].total if rows else 0
    due_count = (rows[0].due_total or 0) if rows else 0
    sections = [s for s in (due, overdue, coming, snoozed) if s.reminders]
    # The poll's view has just read it (``version``): not read twice.
    version = version or panel_version(user, now)
    return Panel(sections=sections, total=total, due_count=due_count, version=version)


def panel_version(user: User, now: datetime | None = None) -> str:
    """What the home panel shows, as a short token, read from the data in ONE
    query (the panel's poll, every 15 s from every open home: the index
    ``reminder_open_by_owner``, or ``reminder_open_by_queue`` for a queue).

    Over the user's open reminders: how many, the latest ``updated_at`` and how
    many are due now, with the user's day. Every write to a reminder moves its
    ``updated_at`` (a new one starts at now), so a write changes the latest or
    the count; time alone changes what is shown only by a reminder falling due
    or waking from a snooze (the due count) or by midnight (the day).
    """
    now = now or timezone.now()
    zone = ZoneInfo(user.time_zone or settings.DEFAULT_USER_TIME_ZONE)
    facts = (
        reminders_for(user)
        .filter(state__in=OPEN_STATES)
        .aggregate(
            open=Count("id"), latest=Max("updated_at"), due=Count("id", filter=_due_now(now))
        )
    )
    latest = facts["latest"].timestamp() if facts["latest"] else 0
    key = f"{now.astimezone(zone).date()}|{facts['open']}|{latest}|{facts['due']}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class TeamReminders:
    due: int
    oldest: datetime  # the longest any of them has waited since falling due


def team_reminders(rep_ids, now: datetime | None = None) -> dict[int, TeamReminders]:
    """For a manager's home: how many reminders each rep has waiting now, in one query."""
    now = now or timezone.now()
    rows = (
        Reminder.objects.filter(_due_now(now), owner_id__in=list(rep_ids))
        .order_by()
        .values("owner_id")
        .annotate(due=Count("id"), oldest=Min(Coalesce("snoozed_until", "due_at")))
    )
    return {row["owner_id"]: TeamReminders(row["due"], row["oldest"]) for row in rows}


REMINDER_FILTERS = {
    "open": ("Open", Q(state__in=OPEN_STATES)),
    "due": ("Due now", None),
    "done": ("Done or resolved", Q(state__in=[ReminderState.DONE, ReminderState.RESOLVED])),
    "all": ("All", Q()),
}


def reminder_list(
    user: User, *, show: str = "open", kind: str = "", now: datetime | None = None
) -> QuerySet:
    """The /reminders/ page: the user's reminders, filtered, newest due first."""
    now = now or timezone.now()
    reminders = reminders_for(user).select_related("deal__customer", "owner", "resolved_by")
    if show == "due":
        reminders = reminders.filter(_due_now(now))
    else:
        condition = REMINDER_FILTERS.get(show, REMINDER_FILTERS["open"])[1]
        reminders = reminders.filter(condition)
    if kind:
        reminders = reminders.filter(kind=kind)
    return reminders.annotate(shown=Coalesce("snoozed_until", "due_at")).order_by("-shown", "-id")
