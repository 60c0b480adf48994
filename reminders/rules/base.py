"""What every rule is made of: the scan's ``Window``, the ``Facts`` of a deal, a
``Rule`` with its ``Want`` and ``Gone``, and the helpers the rules of each app share.

A rule decides in Python, on facts loaded for a whole batch of deals in a few
queries (``reminders.facts``): nothing is compiled per rule and per call, so
one deal costs the same handful of queries as two hundred. A rule owns no
SQL: where a scan looks follows from what the rule wants (``Rule.comes_at``)
and the moments it names (``Rule.wakes``), recorded per deal by the engine
(``reminders.schedule``).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.formats import date_format
from django.utils.translation import get_language

from pipeline.terms import ZERO
from reminders.models import ReminderKind
from reminders.rules.records import Answer, AuditFact, Bounce, Debt, Email, Pending, Request

REP, MANAGER, AUDIT_QUEUE = "rep", "manager", "audit_queue"
ONCE = "once"


@dataclass(frozen=True)
class Window:
    """The span of time a scan looks at, read from settings once per scan.

    Every rule asks it of every deal (tens of thousands of times an hour at a
    million deals): its bounds are computed when it is made, not per question."""

    now: datetime
    lookahead: timedelta = field(init=False)
    # Reminders falling due before this are created now ("coming today").
    horizon: datetime = field(init=False)
    # How far back a scan catches up on what it missed while it was down.
    since: datetime = field(init=False)

    def __post_init__(self) -> None:
        lookahead = timedelta(hours=settings.REMINDERS_LOOKAHEAD_HOURS)
        object.__setattr__(self, "lookahead", lookahead)
        object.__setattr__(self, "horizon", self.now + lookahead)
        since = self.now - timedelta(days=settings.REMINDERS_CATCHUP_DAYS)
        object.__setattr__(self, "since", since)

    def holds(self, moment: datetime) -> bool:
        return self.since < moment <= self.horizon


@dataclass
class Known:
    """An existing reminder, as the engine reads it."""

    id: int
    kind: str
    occurrence: str
    owner_id: int | None
    queue: str
    state: str
    due_at: datetime
    snoozed_until: datetime | None


@dataclass(eq=False, slots=True)
class Facts:
    """What one deal's reminders are decided from, named and typed.

    The deal's own columns and a few of its customer's and rep's
    (``reminders.facts.DEAL_FIELDS`` and ``RELATED_FIELDS``) come first; then
    ``reminders`` (the deal's existing reminders, every state, as ``Known``
    rows), the scan's ``now``, and what each app's loader
    (``reminders.rules.LOADERS``) adds. ``slots``: a fact not declared here
    cannot be set by mistake.
    """

    pk: int
    stage: str
    amount: Decimal
    payment_option: str
    deposit_required: bool
    promised_at: datetime | None
    expected_delivery_date: date | None
    delivered_at: datetime | None
    next_step: str
    next_step_date: date | None
    audit_flag: str
    audit_flag_at: datetime | None
    rep_id: int
    manager_id: int | None
    tz: str
    cutoff_day: int | None
    billing_email_bounced_at: datetime | None
    billing_email: str
    customer_email: str
    last_touch_at: datetime | None
    last_touch_author_id: int | None
    reminders: list[Known] = field(default_factory=list)
    # The scan's moment (reminders.services.reminders_evaluate sets it).
    now: datetime | None = None
    # reminders.rules.audits.load: every audit of the deal, and its latest auditor.
    audits: list[AuditFact] = field(default_factory=list)
    last_auditor_id: int | None = None
    # reminders.rules.billing.load: the ledger and the customer's emails and answers.
    bounces: list[Bounce] = field(default_factory=list)
    invoices: list[Debt] = field(default_factory=list)
    instalments: list[Debt] = field(default_factory=list)
    invoiced: Decimal = ZERO
    paid_without_invoice: Decimal = ZERO
    requests: list[Request] = field(default_factory=list)
    bounced_emails: list[Email] = field(default_factory=list)
    failed_emails: list[Email] = field(default_factory=list)
    invoice_emails: list[Email] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    # reminders.rules.terms.load: changes of frozen terms asked of the manager.
    terms_asks: list = field(default_factory=list)
    # reminders.rules.pending.load: payments still pending.
    pending: list[Pending] = field(default_factory=list)

    def touched_after(self, moment: datetime) -> bool:
        return self.last_touch_at is not None and self.last_touch_at > moment


@dataclass(frozen=True)
class Want:
    """A reminder a deal's facts call for: its occurrence key, due time and sentence.

    ``at`` is the moment checked against the scan's window, when it is not the
    due time itself (an audit due is found by its next call, due at its window).
    ``why`` may be a function of nothing that words it: most wants exist already
    or are not due yet, and the engine words only the reminder it makes (a rule
    that yields in a loop binds the loop's values: ``lambda audit=audit: …``).
    """

    occ: str
    due: datetime
    why: str | Callable[[], str]
    at: datetime | None = None

    @property
    def words(self) -> str:
        return self.why() if callable(self.why) else self.why


@dataclass(frozen=True)
class Gone:
    """One way a reminder's cause goes away, and what is recorded when it does."""

    # Given the deal's facts and the open reminder, is its cause gone?
    when: Callable[[Facts, Known], bool]
    # The words recorded; or, computed from the facts, what exactly resolved it.
    resolution: str | Callable[[Facts, Known], str]
    # Who made the cause go away (e.g. the author of the latest touch);
    # None: whoever triggered the scan.
    by: Callable[[Facts], int | None] | None = None


@dataclass(frozen=True)
class Rule:
    kind: ReminderKind
    owner: str
    # The reminders the deal's facts call for, inside or outside the window:
    # the engine keeps those whose moment the window holds.
    wants: Callable[[Facts, Window], Iterable[Want]]
    gone: tuple[Gone, ...] = field(default=())
    # Which of the kind's reminders are this rule's (kinds shared by rules tell
    # theirs apart by occurrence).
    owns: Callable[[str], bool] = field(default=lambda occurrence: True)
    # A closed deal (paid, lost, written off) ends the reminder unless said otherwise.
    ends_with_deal: bool = True
    # Its cause can arise after the date it is computed from (a deal confirmed
    # at audit two days before the cut-off): never due before it was created.
    not_due_before_created: bool = False
    # Hover, don't smother: a second reminder of the kind on the deal the same
    # day waits a day. Not for news that is "at once" (a bounce, a dispute).
    hovers: bool = True
    # Moments at which the rule's mind changes by time alone, beyond the
    # reminders it wants (those come by themselves, ``comes_at``): an audit
    # window closing, a promised day passing, a cut-off going by. The engine
    # keeps the earliest one after now as the deal's next moment.
    wakes: Callable[[Facts, Window], Iterable[datetime]] | None = None

    def comes_at(self, want: Want, window: Window) -> datetime | None:
        """When a reminder it wants, not made at this scan, will be: the moment
        both its time and its due time come within the horizon (None: its time
        is already past the catch-up window, it never will)."""
        moment = want.at or want.due
        if moment <= window.since:
            return None
        return max(moment, want.due) - window.lookahead

    def next_moments(self, f: Facts, window: Window) -> Iterable[datetime]:
        return self.wakes(f, window) if self.wakes is not None else ()


# --- helpers ------------------------------------------------------------------------


def morning_of(day: date, time_zone: str | None) -> datetime:
    """REMINDERS_MORNING_HOUR on ``day`` in the owner's time zone."""
    zone = ZoneInfo(time_zone or settings.DEFAULT_USER_TIME_ZONE)
    return datetime.combine(day, time(settings.REMINDERS_MORNING_HOUR), tzinfo=zone)


def local_day(moment: datetime, time_zone: str | None) -> date:
    """The day it is at ``moment`` in the owner's time zone."""
    return moment.astimezone(ZoneInfo(time_zone or settings.DEFAULT_USER_TIME_ZONE)).date()


def day_text(value: date | datetime) -> str:
    """A fact's day as words that stay true later: 'Mon 23 Nov'."""
    day = value.astimezone(UTC).date() if isinstance(value, datetime) else value
    return _day_words(day, get_language(), "D j M")


def short_day_text(day: date) -> str:
    """A day without its weekday: '23 Nov'."""
    return _day_words(day, get_language(), "j M")


@lru_cache(maxsize=4096)
def _day_words(day: date, language: str | None, pattern: str) -> str:
    # Every rule words its reminders' sentences at every decision, wanted or not:
    # a handful of days in a handful of languages (the key), formatted once each.
    return date_format(day, pattern)


def person_text(first: str | None, last: str | None, username: str | None, fallback: str) -> str:
    """A person as a reminder names them: their full name, else their username (as
    ``str(user)``), else ``fallback`` when there is nobody ("Your manager")."""
    return f"{first or ''} {last or ''}".strip() or username or fallback


def iso_moment(value: datetime) -> str:
    """A moment as an occurrence key: ISO 8601 in UTC, the same on every database."""
    return value.astimezone(UTC).isoformat()


def iso_day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def setting_hours(name: str) -> timedelta:
    return timedelta(hours=getattr(settings, name))


def setting_days(name: str, default: int | None = None) -> timedelta:
    return timedelta(days=getattr(settings, name, default))
