"""The Not paid yet board: every deal of a team whose money has not cleared.

Selectors only (reads). The board, its CSV export and the charts share one
definition of the filtered, sorted set of deals (``board_deals``), so the
export is exactly the board. Pages are keyset-paginated (``WHERE (key, id) <
(last key, last id)``), never OFFSET, so page 2,000 costs what page 1 costs.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from pipeline.forms import parse_id, search_text
from pipeline.models import Deal, User
from pipeline.not_paid import NOT_PAID_YET
from pipeline.stages import NOT_PAID_STAGES, AuditFlag
from pipeline.terms import MONEY, PaymentOption, Standing
from reminders.models import Reminder

PAGE_SIZE = 50
# Deals without an open reminder sort after every real due time.
NO_REMINDER = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class Bucket:
    key: str
    label: str
    min_days: int
    max_days: int | None


BUCKETS = (
    Bucket("0-30", "0–30 days", 0, 30),
    Bucket("31-60", "31–60 days", 31, 60),
    Bucket("61-90", "61–90 days", 61, 90),
    Bucket("90+", "90+ days", 91, None),
)
BUCKETS_BY_KEY = {bucket.key: bucket for bucket in BUCKETS}


def bucket_for_age(days: int) -> Bucket:
    for bucket in BUCKETS:
        if bucket.max_days is None or days <= bucket.max_days:
            return bucket
    return BUCKETS[-1]


def _bucket_moments(bucket: Bucket, today: date) -> dict[str, datetime]:
    """The moments a bucket's promise dates lie between, by name: a deal promised on
    ``today - n days`` is n days old, compared on the viewer's local day."""
    newest = today - timedelta(days=bucket.min_days)
    moments = {"bucket_before": _start_of(newest + timedelta(days=1))}
    if bucket.max_days is not None:
        moments["bucket_from"] = _start_of(today - timedelta(days=bucket.max_days))
    return moments


def _promised_bounds(bucket: Bucket, at: dict) -> Q:
    """Aging buckets as ranges of promise dates: an index range scan, not a computed age.
    ``at`` holds ``_bucket_moments``' names (their values, or a compiled query's slots)."""
    condition = Q(promised_at__lt=at["bucket_before"])
    if bucket.max_days is not None:
        condition &= Q(promised_at__gte=at["bucket_from"])
    return condition


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def _stage_order() -> Case:
    return Case(
        *[When(stage=stage, then=Value(index)) for index, stage in enumerate(NOT_PAID_STAGES)],
        default=Value(len(NOT_PAID_STAGES)),
        output_field=IntegerField(),
    )


def _open_reminders():
    """A deal's open reminders by the time each asks for attention (the end of a
    snooze, else the due time), earliest first."""
    return (
        Reminder.objects.filter(deal=OuterRef("pk"), state__in=["scheduled", "due", "snoozed"])
        .annotate(shown=Coalesce("snoozed_until", "due_at"))
        .order_by("shown", "id")
    )


def _next_reminder(reminders) -> Subquery:
    """The earliest time an open reminder asks for attention: in the past when one is
    overdue (the board shows "overdue since"), else the next one to come. A snoozed
    reminder counts from the end of its snooze, not from its first due time."""
    return Subquery(reminders.values("shown")[:1], output_field=DateTimeField())


def _next_reminder_kind(reminders) -> Subquery:
    return Subquery(reminders.values("kind")[:1], output_field=CharField())


def _coming_reminder(reminders, now: datetime) -> Subquery:
    """The next reminder still to come, shown under an overdue one ("then …")."""
    coming = reminders.filter(shown__gt=now)
    return Subquery(coming.values("shown")[:1], output_field=DateTimeField())


# Sort keys: what the URL says → the expression the database orders by.
# "age" is the promise date reversed: the oldest promise is the greatest age.
SORTS = {
    "age": ("promised_at", True),
    "customer": ("customer__name", False),
    "rep": ("rep__username", False),
    "stage": ("stage_order", False),
    "amount": ("amount", False),
    "cleared": ("cleared_amount", False),
    "outstanding": ("outstanding_amount", False),
    "standing": ("customer__standing", False),
    "next_reminder": ("next_reminder_at", False),
}
DEFAULT_SORT = "-age"


@dataclass
class BoardFilters:
    rep: int | None = None
    stage: str = ""
    bucket: str = ""
    standing: str = ""
    payment_option: str = ""
    q: str = ""
    sort: str = DEFAULT_SORT
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params, stages=None) -> "BoardFilters":
        """Read the filters from a query string; unknown values are dropped, with a note.

        ``stages``: the stages a filter may name (the board's not-paid ones by
        default; the API's deal list, every stage).
        """
        filters = cls()
        rep = params.get("rep", "")
        filters.rep = parse_id(rep)
        if rep and filters.rep is None:
            filters.errors.append("Unknown rep ignored.")
        for name, allowed in (
            ("stage", [s.value for s in (stages or NOT_PAID_STAGES)]),
            ("bucket", list(BUCKETS_BY_KEY)),
            ("standing", Standing.values),
            ("payment_option", PaymentOption.values),
        ):
            value = params.get(name, "")
            if value in allowed:
                setattr(filters, name, value)
            elif value:
                filters.errors.append(f"Unknown {name.replace('_', ' ')} “{value}” ignored.")
        filters.q, search_error = search_text(params)
        if search_error:
            filters.errors.append(search_error)
        sort = params.get("sort", DEFAULT_SORT)
        filters.sort = sort if sort.lstrip("-") in SORTS else DEFAULT_SORT
        return filters

    def as_params(self, **changes) -> dict[str, str]:
        params = {
            "rep": str(self.rep or ""),
            "stage": self.stage,
            "bucket": self.bucket,
            "standing": self.standing,
            "payment_option": self.payment_option,
            "q": self.q,
            "sort": "" if self.sort == DEFAULT_SORT else self.sort,
        }
        params.update(changes)
        return {key: value for key, value in params.items() if value}

    @property
    def is_filtered(self) -> bool:
        return bool(
            self.rep or self.stage or self.bucket or self.standing or self.payment_option or self.q
        )

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


def not_paid_yet(user: User) -> QuerySet:
    """The user's team's live deals whose money has not all cleared.

    An upfront deal paid in full but not delivered yet is still open (it waits
    in Deposit), but nothing is owed on it: it is not on this board.
    """
    # Not disputed at audit either: a disputed sale is off the billing path until
    # its manager decides (listed apart, ``disputed_awaiting_decision``).
    return Deal.objects.visible_to(user).filter(NOT_PAID_YET)


def disputed_awaiting_decision(user: User) -> QuerySet:
    """The team's sales disputed at audit whose manager has not decided, oldest
    first, with what their list shows (templates/dashboards/_disputed.html)."""
    return (
        Deal.objects.visible_to(user)
        .filter(audit_flag=AuditFlag.DISPUTED)
        .select_related("customer", "rep")
        .only("id", "title", "amount", "audit_flag_at", "customer__name", *REP_NAME_FIELDS)
        .order_by("audit_flag_at", "id")
    )


REP_NAME_FIELDS = ("rep__username", "rep__first_name", "rep__last_name")  # str(rep)


def board_deals(
    user: User,
    filters: BoardFilters,
    today: date | None = None,
    *,
    with_reminder_details: bool = False,
) -> QuerySet:
    """The filtered board, annotated with every column, in the board's sort order.

    ``with_reminder_details`` adds, for the page shown, the kind of the earliest
    open reminder and the next one still to come (the CSV and the charts need neither).
    """
    deals = filter_deals(not_paid_yet(user), filters, today)
    return sort_deals(deals, filters, with_reminder_details=with_reminder_details)


def filter_deals(deals: QuerySet, filters: BoardFilters, today: date | None = None) -> QuerySet:
    """``deals`` narrowed by the board's filters (the board; the API's deal list)."""
    return _filtered(deals, filters, _filter_values(filters, today or timezone.localdate()))


def _filter_values(filters: BoardFilters, today: date) -> dict:
    """What the filters compare with, by name (``_filtered`` reads them)."""
    values = {
        "rep": filters.rep,
        "stage": filters.stage,
        "standing": filters.standing,
        "payment_option": filters.payment_option,
        "q": filters.q,
    }
    if filters.bucket:
        values |= _bucket_moments(BUCKETS_BY_KEY[filters.bucket], today)
    return values


def _filtered(deals: QuerySet, filters: BoardFilters, at: dict) -> QuerySet:
    """``deals`` narrowed by the filters ``filters`` sets, each compared with its
    value in ``at`` (``_filter_values``: the values, or a compiled query's slots)."""
    if filters.rep:
        deals = deals.filter(rep_id=at["rep"])
    if filters.stage:
        deals = deals.filter(stage=at["stage"])
    if filters.bucket:
        deals = deals.filter(_promised_bounds(BUCKETS_BY_KEY[filters.bucket], at))
    if filters.standing:
        deals = deals.filter(customer__standing=at["standing"])
    if filters.payment_option:
        deals = deals.filter(payment_option=at["payment_option"])
    if filters.q:
        deals = deals.filter(
            Q(customer__name__icontains=at["q"]) | Q(customer__company__icontains=at["q"])
        )
    return deals


def sort_deals(
    deals: QuerySet, filters: BoardFilters, *, with_reminder_details: bool = False, now=None
) -> QuerySet:
    """``deals`` with the board's columns, in the order ``filters.sort`` names (the
    order ``board_page`` pages through). ``now`` (the reminder still to come is
    after it) is the current moment unless given (a compiled query's slot)."""
    reminders = _open_reminders()  # built once, read three ways
    deals = deals.annotate(
        outstanding_amount=ExpressionWrapper(F("amount") - F("cleared_amount"), output_field=MONEY),
        stage_order=_stage_order(),
        next_reminder_at=Coalesce(_next_reminder(reminders), Value(NO_REMINDER)),
    ).select_related("customer", "rep")
    if with_reminder_details:
        deals = deals.annotate(
            next_reminder_kind=_next_reminder_kind(reminders),
            coming_reminder_at=_coming_reminder(reminders, timezone.now() if now is None else now),
        )
    column, reverse = SORTS[filters.sort_key]
    descending = filters.descending != reverse
    order = f"-{column}" if descending else column
    return deals.order_by(order, "-id" if descending else "id")


# --- keyset pages -------------------------------------------------------------


def encode_cursor(value, pk: int) -> str:
    if isinstance(value, datetime):
        value = {"dt": value.isoformat()}
    elif isinstance(value, Decimal):
        value = {"dec": str(value)}
    raw = json.dumps([value, pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# What a cursor's key must be for each sort column: anything else is a tampered cursor.
CURSOR_TYPES = {
    "promised_at": datetime,
    "next_reminder_at": datetime,
    "amount": Decimal,
    "cleared_amount": Decimal,
    "outstanding_amount": Decimal,
    "stage_order": int,
    "customer__name": str,
    "rep__username": str,
    "customer__standing": str,
}
MAX_ID = 2**63 - 1  # a bigint


def decode_cursor(cursor: str, column: str | None = None):
    """(value, pk) from a cursor, or None if it was tampered with or is stale.

    With ``column``, the value must also be what that sort column holds (a
    datetime, a finite amount, a text without NUL...), so a forged cursor can
    only ever mean "the first page", never a query the database refuses.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, TypeError, RecursionError):
        return None
    if type(pk) is not int or not 0 < pk <= MAX_ID:
        return None
    try:
        value = _cursor_value(value)
    except (ValueError, TypeError, ArithmeticError):
        return None
    if column is not None and not _fits(value, CURSOR_TYPES[column]):
        return None
    return value, pk


def _cursor_value(value):
    if isinstance(value, dict):
        if isinstance(value.get("dt"), str):
            return parse_datetime(value["dt"])
        if isinstance(value.get("dec"), str):
            return Decimal(value["dec"])
    return value


def _fits(value, kind: type) -> bool:
    if kind is datetime:
        return isinstance(value, datetime) and value.tzinfo is not None
    if kind is Decimal:
        return isinstance(value, Decimal) and value.is_finite() and abs(value) < 10**14
    if kind is int:
        return type(value) is int and abs(value) <= MAX_ID
    return isinstance(value, str) and "\x00" not in value


def _key_value(deal: Deal, column: str):
    value = deal
    for part in column.split("__"):
        value = getattr(value, part)
    return value


@dataclass
class BoardPage:
    deals: list
    next_cursor: str | None
    prev_cursor: str | None
    is_first: bool


def board_page(
    deals: QuerySet, filters: BoardFilters, after: str = "", before: str = "", size=PAGE_SIZE
) -> BoardPage:
    """One page of ``deals`` after (or before) a cursor: a keyset page, not an OFFSET."""
    column, descending = _sort_of(filters)
    cursor = decode_cursor(after or before, column) if (after or before) else None
    going_back = bool(before) and cursor is not None
    if cursor is not None:
        deals = _beyond(deals, column, descending != going_back, *cursor)
    if going_back:
        deals = deals.reverse()
    return _paged(list(deals[: size + 1]), size, cursor, going_back, column, _key_value)


def _sort_of(filters: BoardFilters) -> tuple[str, bool]:
    """The column the board is ordered by, and whether descending."""
    column, reverse = SORTS[filters.sort_key]
    return column, filters.descending != reverse


def _beyond(deals: QuerySet, column: str, smaller: bool, value, pk) -> QuerySet:
    """``deals`` whose (key, id) is beyond the cursor's: smaller ones going forward
    in a descending order (or back in an ascending one), else greater ones."""
    op = "lt" if smaller else "gt"
    # Written so the first condition is an index range on the key: "key >= v
    # AND (key > v OR id > pk)". The plain "key > v OR (key = v AND id > pk)"
    # makes PostgreSQL scan from the start of the index, so deep pages would
    # cost more than page 1.
    return deals.filter(
        Q(**{f"{column}__{op}e": value})
        & (Q(**{f"{column}__{op}": value}) | Q(**{f"pk__{op}": pk}))
    )


def _paged(rows: list, size: int, cursor, going_back: bool, column: str, key_of) -> BoardPage:
    """The page of ``rows`` (up to ``size + 1`` read beyond the cursor, in the
    order read): its cursors made of ``key_of(row, column)`` and the row's id."""
    has_more = len(rows) > size
    rows = rows[:size]
    if going_back:
        rows.reverse()
    first_page = cursor is None or (going_back and not has_more)
    next_cursor = prev_cursor = None
    if rows:
        if has_more or going_back:
            last = rows[-1]
            next_cursor = encode_cursor(key_of(last, column), last.pk)
        if not first_page:
            first = rows[0]
            prev_cursor = encode_cursor(key_of(first, column), first.pk)
    return BoardPage(rows, next_cursor, prev_cursor, first_page)
