"""The reminder kinds as data: one Rule per kind (DOMAIN.md, "Follow-up reminders").

Each rule says, in one place:

- ``find``: the deals whose facts call for a reminder of this kind that does
  not exist yet, each annotated with its ``occ`` (occurrence key). The query
  is limited to a window of time (``Window``) around now, so a scan that finds
  nothing new reads a few index ranges, not every deal;
- ``due``: when the reminder falls due;
- ``why``: the sentence the panel and the email show;
- ``owner``: who gets it (the deal's rep, the rep's manager, or a role queue);
- ``gone``: how to tell that its cause is gone, and the words recorded when
  the scan resolves it.

The scan (``reminders.services.reminders_scan``) applies every rule;
nothing else decides when a reminder exists. The rules read the apps below
(pipeline, billing, audits) directly; none of them knows reminders exist.
A new kind is a ``ReminderKind`` and a ``Rule`` here, listed in ``rules()``.
"""

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    CharField,
    DecimalField,
    Exists,
    F,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat, TruncDate
from django.utils.formats import date_format

from audits.models import Audit, AuditState, CallAttempt
from billing.models import Instalment, Invoice, Payment, PaymentEvent, PaymentStatus
from billing.policy import next_cutoff
from pipeline.models import Deal, Touch, User
from pipeline.stages import CLOSED_STAGES, Stage
from pipeline.terms import PaymentOption
from reminders.models import Reminder, ReminderKind, ReminderQueue

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


def _deals(deal_ids: list[int] | None) -> QuerySet:
    deals = Deal.objects.order_by()  # no sort: the scan reads rows, not pages
    return deals if deal_ids is None else deals.filter(pk__in=deal_ids)


def _missing(rows: QuerySet, kind: str, deal: str = "pk") -> QuerySet:
    """Rows (annotated with ``occ``) whose deal has no reminder of this kind and occurrence."""
    existing = Reminder.objects.filter(deal=OuterRef(deal), kind=kind, occurrence=OuterRef("occ"))
    return rows.filter(~Exists(existing))


def _value(text: str):
    return Value(text, output_field=CharField())


def _iso(field_name: str):
    """A date column as its ISO text ('2026-11-22'), the same on SQLite and PostgreSQL."""
    return Cast(F(field_name), CharField())


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


def _hours(name: str) -> timedelta:
    return timedelta(hours=getattr(settings, name))


def _days(name: str, default: int | None = None) -> timedelta:
    return timedelta(days=getattr(settings, name, default))


# --- post-sale check-in -------------------------------------------------------------


def _find_check_in(window: Window, deal_ids: list[int] | None) -> QuerySet:
    delay = _hours("REMINDERS_CHECK_IN_HOURS")
    deals = (
        _deals(deal_ids)
        .open()
        .filter(promised_at__gt=window.since - delay, promised_at__lte=window.horizon - delay)
    )
    return _missing(deals.annotate(occ=_value(ONCE)), ReminderKind.CHECK_IN).values(
        "promised_at", "occ", **DEAL_ROW
    )


CHECK_IN = Rule(
    kind=ReminderKind.CHECK_IN,
    owner=REP,
    find=_find_check_in,
    due=lambda row: row["promised_at"] + _hours("REMINDERS_CHECK_IN_HOURS"),
    why=lambda row: (
        f"Promised {day_text(row['promised_at'])}: check in, make them feel good "
        "about their decision."
    ),
    gone=(
        # A touch after the promise day is the check-in.
        Gone(
            lambda: _touched_after(_hours("REMINDERS_CHECK_IN_HOURS") / 2),
            "Checked in: a touch was recorded.",
            by=_latest_touch_author,
        ),
    ),
)


# --- deposit missing ----------------------------------------------------------------


def _deposit_days() -> timedelta:
    # Billing's setting: how many days after the promise a required deposit is expected.
    return _days("CLEARED_DEPOSIT_EXPECTED_DAYS", 3)


def _find_deposit_missing(window: Window, deal_ids: list[int] | None) -> QuerySet:
    delay = _deposit_days()
    deals = _deals(deal_ids).filter(
        stage=Stage.PROMISED,
        deposit_required=True,
        promised_at__gt=window.since - delay,
        promised_at__lte=window.horizon - delay,
    )
    return _missing(deals.annotate(occ=_value(ONCE)), ReminderKind.DEPOSIT_MISSING).values(
        "promised_at", "occ", **DEAL_ROW
    )


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
    grace = _days("REMINDERS_DELIVERY_GRACE_DAYS")
    deals = (
        _deals(deal_ids)
        .open()
        .filter(window.mornings("expected_delivery_date", lag=grace), delivered_at__isnull=True)
    )
    occ = _iso("expected_delivery_date")
    return _missing(deals.annotate(occ=occ), ReminderKind.DELIVERY_OVERDUE).values(
        "expected_delivery_date", "title", "occ", **DEAL_ROW
    )


DELIVERY_OVERDUE = Rule(
    kind=ReminderKind.DELIVERY_OVERDUE,
    owner=REP,
    find=_find_delivery_overdue,
    due=lambda row: morning_of(
        row["expected_delivery_date"] + _days("REMINDERS_DELIVERY_GRACE_DAYS"),
        row["tz"],
    ),
    why=lambda row: (
        f"Delivery expected on {day_text(row['expected_delivery_date'])}: not delivered yet."
    ),
    gone=(
        Gone(lambda: Q(deal__delivered_at__isnull=False), "Delivered."),
        Gone(
            lambda: ~Q(occurrence=_iso("deal__expected_delivery_date")),
            "Expected delivery date moved.",
        ),
    ),
)


# --- satisfaction check -------------------------------------------------------------


def _find_satisfaction(window: Window, deal_ids: list[int] | None) -> QuerySet:
    delay = _days("REMINDERS_SATISFACTION_DAYS")
    deals = (
        _deals(deal_ids)
        .exclude(stage__in=[Stage.LOST, Stage.WRITTEN_OFF])
        .filter(delivered_at__gt=window.since - delay, delivered_at__lte=window.horizon - delay)
    )
    return _missing(deals.annotate(occ=_value(ONCE)), ReminderKind.SATISFACTION_CHECK).values(
        "delivered_at", "occ", **DEAL_ROW
    )


SATISFACTION_CHECK = Rule(
    kind=ReminderKind.SATISFACTION_CHECK,
    owner=REP,
    find=_find_satisfaction,
    due=lambda row: row["delivered_at"] + _days("REMINDERS_SATISFACTION_DAYS"),
    why=lambda row: (
        f"Delivered on {day_text(row['delivered_at'])}: check the customer is happy with it."
    ),
    gone=(
        Gone(
            lambda: _touched_after(_days("REMINDERS_SATISFACTION_DAYS")),
            "Customer contacted after delivery.",
            by=_latest_touch_author,
        ),
    ),
    # Paid is no reason to skip asking whether they are happy.
    ends_with_deal=False,
)


# --- next step due ------------------------------------------------------------------


def _find_next_step(window: Window, deal_ids: list[int] | None) -> QuerySet:
    deals = _deals(deal_ids).open().filter(window.mornings("next_step_date"))
    occ = _iso("next_step_date")
    return _missing(deals.annotate(occ=occ), ReminderKind.NEXT_STEP_DUE).values(
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
            lambda: ~Q(occurrence=_iso("deal__next_step_date")),
            "A touch set a new next step.",
            by=_latest_touch_author,
        ),
    ),
)


# --- stale deal ---------------------------------------------------------------------


def _find_stale(window: Window, deal_ids: list[int] | None) -> QuerySet:
    stale = _days("REMINDERS_STALE_DAYS")
    last_touch = Subquery(
        Touch.objects.filter(deal=OuterRef("pk")).order_by("-happened_at").values("happened_at")[:1]
    )
    deals = (
        _deals(deal_ids)
        .open()
        .filter(promised_at__lte=window.horizon - stale)
        .annotate(last_activity=Coalesce(last_touch, F("promised_at")))
        .filter(last_activity__gt=window.since - stale, last_activity__lte=window.horizon - stale)
    )
    occ = Cast(TruncDate("last_activity", tzinfo=UTC), CharField())
    return _missing(deals.annotate(occ=occ), ReminderKind.STALE_DEAL).values(
        "last_activity", "occ", **DEAL_ROW
    )


STALE_DEAL = Rule(
    kind=ReminderKind.STALE_DEAL,
    sweep_only=True,
    owner=REP,
    find=_find_stale,
    due=lambda row: row["last_activity"] + _days("REMINDERS_STALE_DAYS"),
    why=lambda row: (
        f"No touch since {day_text(row['last_activity'])}: always have a reason to call back."
    ),
    gone=(
        Gone(
            lambda: _touched_after(_days("REMINDERS_STALE_DAYS")),
            "A touch was recorded.",
            by=_latest_touch_author,
        ),
    ),
)


# --- audits: due, overdue (escalation), retry / call back ----------------------------
# Read from audits.Audit's deadlines (call window, next_call_at).

AUDIT_ROW = {
    "deal_pk": F("deal_id"),
    "rep_pk": F("deal__rep_id"),
    "manager_pk": F("deal__rep__manager_id"),
    "tz": F("deal__rep__time_zone"),
}


def _audits(deal_ids: list[int] | None) -> QuerySet:
    audits = Audit.objects.order_by()
    return audits if deal_ids is None else audits.filter(deal_id__in=deal_ids)


def _audit_occ():
    """One reminder per audit: 'a<audit id>'."""
    return Concat(Value("a"), Cast("id", CharField()), output_field=CharField())


def _audit_call_occ():
    """One reminder per audit and planned call: 'a<audit id>@<next call time>'."""
    return Concat(
        Value("a"),
        Cast("id", CharField()),
        Value("@"),
        Cast("next_call_at", CharField()),
        output_field=CharField(),
    )


def _clock(value: datetime) -> str:
    zone = ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)
    return date_format(value.astimezone(zone), "D j M, H:i")


def _no_open_audit(states: tuple[str, ...], occ) -> Callable[[], Exists]:
    """The reminder's audit (named by its occurrence) is no longer in ``states``."""

    def when() -> Exists:
        audits = (
            _audits(None)
            .filter(deal_id=OuterRef("deal_id"), state__in=states)
            .annotate(occ=occ())
            .filter(occ=OuterRef("occurrence"))
        )
        return ~Exists(audits)

    return when


def _latest_auditor():
    return Subquery(
        CallAttempt.objects.filter(audit__deal_id=OuterRef("deal_id"))
        .order_by("-at", "-id")
        .values("auditor_id")[:1]
    )


def _find_audit_due(window: Window, deal_ids: list[int] | None) -> QuerySet:
    audits = _audits(deal_ids).filter(
        state=AuditState.QUEUED, next_call_at__gt=window.since, next_call_at__lte=window.horizon
    )
    return _missing(audits.annotate(occ=_audit_occ()), ReminderKind.AUDIT_DUE, "deal_id").values(
        "call_window_start", "call_window_end", "occ", **AUDIT_ROW
    )


AUDIT_DUE = Rule(
    kind=ReminderKind.AUDIT_DUE,
    owner=AUDIT_QUEUE,
    find=_find_audit_due,
    due=lambda row: row["call_window_start"],
    why=lambda row: (
        f"Call window {_clock(row['call_window_start'])}–"
        f"{row['call_window_end'].astimezone(ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)):%H:%M}: "
        "phone the customer and close the sale a second time."
    ),
    gone=(
        Gone(
            _no_open_audit(("queued",), _audit_occ),
            "The audit call was made.",
            by=_latest_auditor,
        ),
    ),
)


def _find_audit_overdue(window: Window, deal_ids: list[int] | None) -> QuerySet:
    # Only once the window has closed: an escalation is never "coming".
    audits = _audits(deal_ids).filter(
        state=AuditState.QUEUED, call_window_end__gt=window.since, call_window_end__lte=window.now
    )
    return _missing(
        audits.annotate(occ=_audit_occ()), ReminderKind.AUDIT_OVERDUE, "deal_id"
    ).values("call_window_end", "occ", **AUDIT_ROW)


AUDIT_OVERDUE = Rule(
    kind=ReminderKind.AUDIT_OVERDUE,
    owner=MANAGER,
    find=_find_audit_overdue,
    due=lambda row: row["call_window_end"],
    why=lambda row: f"Audit window closed {_clock(row['call_window_end'])} with no call attempt.",
    gone=(
        Gone(
            _no_open_audit(("queued",), _audit_occ),
            "An auditor called.",
            by=_latest_auditor,
        ),
    ),
)


def _find_audit_retry(window: Window, deal_ids: list[int] | None) -> QuerySet:
    audits = _audits(deal_ids).filter(
        state__in=[AuditState.RETRY, AuditState.CALL_BACK],
        next_call_at__gt=window.since,
        next_call_at__lte=window.horizon,
    )
    return _missing(
        audits.annotate(occ=_audit_call_occ()), ReminderKind.AUDIT_RETRY, "deal_id"
    ).values("state", "next_call_at", "no_answer_count", "occ", **AUDIT_ROW)


def _retry_why(row: dict) -> str:
    if row["state"] == "call_back":
        return f"The customer asked to be called back {_clock(row['next_call_at'])}."
    return (
        f"No answer ({row['no_answer_count']} so far): call again from "
        f"{_clock(row['next_call_at'])}."
    )


AUDIT_RETRY = Rule(
    kind=ReminderKind.AUDIT_RETRY,
    owner=AUDIT_QUEUE,
    find=_find_audit_retry,
    due=lambda row: row["next_call_at"],
    why=_retry_why,
    gone=(
        Gone(
            _no_open_audit(("retry", "call_back"), _audit_call_occ),
            "Called again, or the audit closed.",
            by=_latest_auditor,
        ),
    ),
)


# --- flaked and disputed at audit ---------------------------------------------------
# Read from the deal's own audit flag (``Deal.audit_flag``, written by audits
# with the outcome): no import of audits. The occurrence is the flag's time,
# so a second flake or dispute of the same deal is a new reminder.


def _audit_flag_rule(flag: str, kind: str, owner: str, why: Callable[[dict], str]) -> Rule:
    suffix = "rep" if owner == REP else "manager"

    def find(window: Window, deal_ids: list[int] | None) -> QuerySet:
        deals = _deals(deal_ids).filter(
            audit_flag=flag, audit_flag_at__gt=window.since, audit_flag_at__lte=window.horizon
        )
        occ = Concat(
            Cast("audit_flag_at", CharField()), Value(f"/{suffix}"), output_field=CharField()
        )
        return _missing(deals.annotate(occ=occ), kind).values("audit_flag_at", "occ", **DEAL_ROW)

    return Rule(
        kind=kind,
        owner=owner,
        find=find,
        due=lambda row: row["audit_flag_at"],
        why=why,
        gone=(
            Gone(
                lambda: ~Q(deal__audit_flag=flag),
                "Answered: wrapped up again, decided by the manager, or the deal moved on.",
            ),
        ),
    )


AUDIT_FLAKED = _audit_flag_rule(
    "flaked",
    ReminderKind.AUDIT_FLAKED,
    REP,
    lambda row: (
        f"Flaked at audit — re-close: three calls on {day_text(row['audit_flag_at'])}, "
        "no answer. Re-close with the customer, then wrap it up again."
    ),
)
AUDIT_DISPUTED_REP = _audit_flag_rule(
    "disputed",
    ReminderKind.AUDIT_DISPUTED,
    REP,
    lambda row: (
        f"Disputed at audit on {day_text(row['audit_flag_at'])}: the customer does not "
        "recognise the sale. Your manager decides: lost, or back to you to re-close."
    ),
)
AUDIT_DISPUTED_MANAGER = _audit_flag_rule(
    "disputed",
    ReminderKind.AUDIT_DISPUTED,
    MANAGER,
    lambda row: (
        f"Disputed at audit on {day_text(row['audit_flag_at'])}: decide — mark it lost, "
        "or send it back to the rep to re-close."
    ),
)


# --- billing: payment bounced, payment due and the overdue ladder ------------------
# Read from billing's ledger (PaymentEvent, Invoice, Instalment).


def _money(amount) -> str:
    return f"{settings.CURRENCY_SYMBOL}{amount:,.2f}"


def _bounced_rule(owner: str) -> Rule:
    suffix = "rep" if owner == REP else "manager"

    def find(window: Window, deal_ids: list[int] | None) -> QuerySet:
        events = PaymentEvent.objects.order_by().filter(
            to_status__in=[PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK],
            at__gt=window.since,
            at__lte=window.horizon,
        )
        if deal_ids is not None:
            events = events.filter(payment__deal_id__in=deal_ids)
        occ = Concat(
            Value("p"),
            Cast("payment_id", CharField()),
            Value(f"/{suffix}"),
            output_field=CharField(),
        )
        return _missing(
            events.annotate(occ=occ), ReminderKind.PAYMENT_BOUNCED, "payment__deal_id"
        ).values(
            "at",
            "to_status",
            "occ",
            amount=F("payment__amount"),
            deal_pk=F("payment__deal_id"),
            rep_pk=F("payment__deal__rep_id"),
            manager_pk=F("payment__deal__rep__manager_id"),
            tz=F("payment__deal__rep__time_zone"),
        )

    return Rule(
        kind=ReminderKind.PAYMENT_BOUNCED,
        owner=owner,
        find=find,
        due=lambda row: row["at"],
        why=lambda row: (
            f"A payment of {_money(row['amount'])} "
            f"{'was charged back' if row['to_status'] == 'charged_back' else 'bounced'} "
            f"on {day_text(row['at'])}: the deal is not paid — ask for the money again."
        ),
    )


@dataclass(frozen=True)
class Owed:
    """Something billed with a due date, chased on its own: an invoice or an instalment.

    Its reminders' occurrence is ``<prefix><id><rung>`` (``i12+7``, ``n3``),
    so invoices and instalments share the payment kinds without colliding.
    """

    model: type[Model]  # billing's Invoice or Instalment
    payment_field: str  # the Payment foreign key that pays it
    deal: str  # the path from it to its deal
    prefix: str
    noun: str
    label_field: str  # "number" or "sequence"

    def unpaid(self, deal_ids: list[int] | None) -> QuerySet:
        """Those not void whose cleared payments do not cover them."""
        cleared = Coalesce(
            Subquery(
                Payment.objects.filter(
                    **{self.payment_field: OuterRef("pk")}, status=PaymentStatus.CLEARED
                )
                .order_by()
                .values(self.payment_field)
                .annotate(total=Sum("amount"))
                .values("total")
            ),
            Value(Decimal("0.00")),
            output_field=DecimalField(max_digits=14, decimal_places=2),
        )
        rows = self.model.objects.order_by()
        if self.model is Invoice:
            rows = rows.filter(voided_at__isnull=True)
        rows = rows.annotate(cleared=cleared).filter(cleared__lt=F("amount"))
        return rows if deal_ids is None else rows.filter(**{f"{self.deal}_id__in": deal_ids})

    def occ(self, rung: str):
        return Concat(
            Value(self.prefix), Cast("id", CharField()), Value(rung), output_field=CharField()
        )

    def row(self) -> dict:
        return {
            "deal_pk": F(f"{self.deal}_id"),
            "rep_pk": F(f"{self.deal}__rep_id"),
            "manager_pk": F(f"{self.deal}__rep__manager_id"),
            "tz": F(f"{self.deal}__rep__time_zone"),
        }

    def name(self, row: dict) -> str:
        if self.model is Invoice:
            return f"Invoice #{row['label']}"
        return f"Instalment {row['label']} of the payment plan"

    def paid(self, rung: str) -> Callable[[], Q]:
        def when() -> Q:
            unpaid = (
                self.unpaid(None)
                .filter(**{f"{self.deal}_id": OuterRef("deal_id")})
                .annotate(occ=self.occ(rung))
                .filter(occ=OuterRef("occurrence"))
            )
            # Only this rung's reminders of this kind of debt: the other rungs
            # and the other debts share the reminder kind.
            return Q(occurrence__startswith=self.prefix, occurrence__endswith=rung) & ~Exists(
                unpaid
            )

        return when


INVOICE = Owed(Invoice, "invoice", "deal", "i", "invoice", "number")
INSTALMENT = Owed(Instalment, "instalment", "plan__deal", "n", "instalment", "sequence")


def _payment_rule(kind: str, days: int, owner: str, owed: Owed = INVOICE) -> Rule:
    """Payment due (``days`` = 0) or a rung of the overdue ladder (+``days``)."""
    rung = "" if days == 0 else f"+{days}" + ("/manager" if owner == MANAGER else "")
    lag = timedelta(days=days)

    def find(window: Window, deal_ids: list[int] | None) -> QuerySet:
        rows = owed.unpaid(deal_ids).filter(
            window.mornings("due_date", lag=lag, rep=f"{owed.deal}__rep")
        )
        return _missing(rows.annotate(occ=owed.occ(rung)), kind, f"{owed.deal}_id").values(
            "due_date", "amount", "cleared", "occ", label=F(owed.label_field), **owed.row()
        )

    def why(row: dict) -> str:
        left = _money(row["amount"] - row["cleared"])
        if days == 0:
            return (
                f"{owed.name(row)} ({left}) is due {day_text(row['due_date'])}: ask for the money."
            )
        return (
            f"{owed.name(row)} ({left}) was due {day_text(row['due_date'])}, "
            f"{days} days ago: ask for the money — avoiding it does not work."
        )

    return Rule(
        kind=kind,
        owner=owner,
        find=find,
        due=lambda row: morning_of(row["due_date"] + lag, row["tz"]),
        why=why,
        gone=(Gone(owed.paid(rung), f"Paid: cleared money covers the {owed.noun}."),),
        ends_with_deal=False,  # paid is how it ends; a lost deal's debt is still owed
    )


def _ladder() -> list[int]:
    return sorted({int(day) for day in settings.REMINDERS_PAYMENT_LADDER_DAYS if int(day) > 0})


def _invoiced():
    return Coalesce(
        Subquery(
            Invoice.objects.filter(deal=OuterRef("pk"), voided_at__isnull=True)
            .order_by()
            .values("deal")
            .annotate(total=Sum("amount"))
            .values("total")
        ),
        Value(Decimal("0.00")),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )


def _find_invoice_cutoff(window: Window, deal_ids: list[int] | None) -> list[dict]:
    """Billed deals not fully invoiced whose customer's cut-off is coming up.

    The cut-off is a day of the month (``Customer.accounting_cutoff_day``), so
    the cut-off dates are worked out here (``billing.policy.next_cutoff``) and
    the occurrence is the cut-off date: one reminder per deal and cut-off.
    """
    lead = _days("REMINDERS_INVOICE_CUTOFF_DAYS")
    first, last = window.dates(lag=-lead)
    if window.lookback is not None:  # the quick scan: only cut-offs whose morning just came
        cutoffs = window.morning_days(lag=-lead)
        if not cutoffs:
            return []
        first, last = min(cutoffs), max(cutoffs)
    days: set[int] = set()
    day = first
    while day <= last:
        days.add(day.day)
        if day.day == calendar.monthrange(day.year, day.month)[1]:
            days.update(range(day.day + 1, 32))  # a cut-off past a short month's end
        day += timedelta(days=1)
    rows = (
        _deals(deal_ids)
        .filter(
            payment_option=PaymentOption.INVOICE,
            stage__in=[Stage.AUDIT_CONFIRMED, Stage.DELIVERED],
            customer__accounting_cutoff_day__in=sorted(days),
        )
        .annotate(invoiced=_invoiced())
        .filter(invoiced__lt=F("amount"))
        .values("amount", "invoiced", cutoff_day=F("customer__accounting_cutoff_day"), **DEAL_ROW)
    )
    found = []
    for row in rows:
        cutoff = next_cutoff(row["cutoff_day"], first)
        if cutoff is None or cutoff > last:
            continue
        found.append({**row, "cutoff": cutoff, "occ": cutoff.isoformat()})
    if not found:
        return []
    existing = set(
        Reminder.objects.filter(
            kind=ReminderKind.INVOICE_CUTOFF, deal_id__in=[row["deal_pk"] for row in found]
        ).values_list("deal_id", "occurrence")
    )
    return [row for row in found if (row["deal_pk"], row["occ"]) not in existing]


def _invoice_sent():
    not_invoiced = (
        Deal.objects.filter(pk=OuterRef("deal_id"))
        .annotate(invoiced=_invoiced())
        .filter(invoiced__lt=F("amount"))
    )
    return ~Exists(not_invoiced)


INVOICE_CUTOFF = Rule(
    kind=ReminderKind.INVOICE_CUTOFF,
    owner=REP,
    find=_find_invoice_cutoff,
    due=lambda row: morning_of(row["cutoff"] - _days("REMINDERS_INVOICE_CUTOFF_DAYS"), row["tz"]),
    why=lambda row: (
        f"The customer's accounting cut-off is {day_text(row['cutoff'])}: send the invoice "
        f"({_money(row['amount'] - row['invoiced'])} not invoiced) so it makes their payment run."
    ),
    gone=(Gone(_invoice_sent, "The invoice was sent."),),
    not_due_before_created=True,
)


def billing_rules() -> tuple[Rule, ...]:
    ladder = _ladder()
    rules = [
        INVOICE_CUTOFF,
        _bounced_rule(REP),
        _bounced_rule(MANAGER),
        _payment_rule(ReminderKind.PAYMENT_DUE, 0, REP),
    ]
    rules += [_payment_rule(ReminderKind.PAYMENT_OVERDUE, days, REP) for days in ladder]
    if ladder:  # past the last rung, the manager hears about it too
        rules.append(_payment_rule(ReminderKind.PAYMENT_OVERDUE, ladder[-1], MANAGER))
    # Each instalment of a payment plan is due and chased on its own.
    rules.append(_payment_rule(ReminderKind.PAYMENT_DUE, 0, REP, INSTALMENT))
    rules += [_payment_rule(ReminderKind.PAYMENT_OVERDUE, days, REP, INSTALMENT) for days in ladder]
    if ladder:
        rules.append(_payment_rule(ReminderKind.PAYMENT_OVERDUE, ladder[-1], MANAGER, INSTALMENT))
    return tuple(rules)


RULES: tuple[Rule, ...] = (
    AUDIT_DUE,
    AUDIT_OVERDUE,
    AUDIT_RETRY,
    AUDIT_FLAKED,
    AUDIT_DISPUTED_REP,
    AUDIT_DISPUTED_MANAGER,
    CHECK_IN,
    DEPOSIT_MISSING,
    DELIVERY_OVERDUE,
    SATISFACTION_CHECK,
    NEXT_STEP_DUE,
    STALE_DEAL,
)


def rules() -> Iterable[Rule]:
    return RULES + billing_rules()


def owner_of(rule: Rule, row: dict) -> tuple[int | None, str]:
    """(owner user id, role queue) of a reminder made from a rule's row."""
    if rule.owner == AUDIT_QUEUE:
        return None, ReminderQueue.AUDIT
    if rule.owner == MANAGER:
        # A rep without a manager keeps their own escalations.
        return row["manager_pk"] or row["rep_pk"], ReminderQueue.NONE
    return row["rep_pk"], ReminderQueue.NONE


DEAL_CLOSED = Gone(
    lambda: Q(deal__stage__in=sorted(CLOSED_STAGES)),
    "The deal is closed: paid, lost or written off.",
)
DEAL_LOST = Gone(
    lambda: Q(deal__stage__in=[Stage.LOST, Stage.WRITTEN_OFF]),
    "The deal is lost or written off.",
)


def gone_for(rule: Rule) -> tuple[Gone, ...]:
    """Every way a reminder of this rule's kind is resolved, the deal's end first."""
    return ((DEAL_CLOSED if rule.ends_with_deal else DEAL_LOST), *rule.gone)
