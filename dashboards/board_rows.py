"""The board's rows read as values, through compiled queries (issue 23).

The board's page (``board_rows_page``) and its list of disputed sales
(``disputed_rows``) are the queries ``dashboards.board`` defines
(``board_page(board_deals(…))``, ``disputed_awaiting_decision``), built by the
same functions with every value left open (``pipeline.compiled``), compiled
once per team and shape, their rows dataclasses instead of model instances:
a board read costs its SQL, not the ORM's building, compiling and
instantiating again.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import BigIntegerField, CharField, DateTimeField, QuerySet
from django.utils import timezone

from dashboards.board import (
    PAGE_SIZE,
    REP_NAME_FIELDS,
    BoardFilters,
    BoardPage,
    _beyond,
    _filter_values,
    _filtered,
    _paged,
    _sort_of,
    decode_cursor,
    disputed_awaiting_decision,
    not_paid_yet,
    sort_deals,
)
from pipeline.compiled import Compiled, Slot, where_key
from pipeline.models import Deal, User, deal_url
from pipeline.people import person_name
from pipeline.terms import MONEY


class _RepName:
    """``rep_name`` of a row holding ``REP_NAME_FIELDS``: as ``str(rep)``, the
    full name, else the username."""

    __slots__ = ()

    @property
    def rep_name(self) -> str:
        return person_name(self.rep_first_name, self.rep_last_name, self.rep_username)


@dataclass(frozen=True, slots=True)
class DisputedRow(_RepName):
    """A sale disputed at audit as its list shows it (templates/dashboards/_disputed.html)."""

    pk: int
    title: str
    amount: Decimal
    audit_flag_at: datetime
    customer_name: str
    rep_username: str
    rep_first_name: str
    rep_last_name: str


_DISPUTED = Compiled(
    lambda user: disputed_awaiting_decision(user).values_list(
        "pk", "title", "amount", "audit_flag_at", "customer__name", *REP_NAME_FIELDS
    )
)


def disputed_rows(user: User) -> list[DisputedRow]:
    """``disputed_awaiting_decision(user)`` as ``DisputedRow`` values: the board
    and the manager's home. Compiled once per team."""
    team = where_key(Deal.objects.visible_to(user))
    if team is None:
        return []
    return [DisputedRow(*row) for row in _DISPUTED.rows(user, key=team)]


@dataclass(frozen=True, slots=True)
class BoardRow(_RepName):
    """A deal as a board row shows it (``board_rows``): ``_ROW_COLUMNS``, read as values."""

    pk: int
    title: str
    stage: str
    amount: Decimal
    cleared_amount: Decimal
    outstanding_amount: Decimal
    promised_at: datetime
    customer_name: str
    customer_standing: str
    rep_username: str
    rep_first_name: str
    rep_last_name: str
    stage_order: int
    next_reminder_at: datetime
    next_reminder_kind: str | None
    coming_reminder_at: datetime | None

    def get_absolute_url(self) -> str:
        return deal_url(self.pk)

    @staticmethod
    def key(row: "BoardRow", column: str):
        """The value of a sort column (``SORTS``: "customer__name" is ``customer_name``)."""
        return getattr(row, column.replace("__", "_"))


# The columns a board row shows (dashboards/templatetags/dashboards.py) and its
# cursor reads, not the ~75 of a deal, its customer and its rep.
_ROW_COLUMNS = (
    "pk",
    "title",
    "stage",
    "amount",
    "cleared_amount",
    "outstanding_amount",
    "promised_at",
    "customer__name",
    "customer__standing",
    *REP_NAME_FIELDS,
    "stage_order",
    "next_reminder_at",
    "next_reminder_kind",
    "coming_reminder_at",
)
# What a slot of the page's query holds, by the Python type of its value.
_SLOT_FIELDS = {
    int: BigIntegerField,
    str: CharField,
    datetime: DateTimeField,
    Decimal: lambda: MONEY,
}


def _slot_field(value):
    return next(field() for kind, field in _SLOT_FIELDS.items() if isinstance(value, kind))


@dataclass(frozen=True)
class _Shape:
    """What the board page's SQL depends on besides whose deals it reads: which
    filters are set (the bucket by name: an open bucket has no lower bound), the
    order, the cursor's direction (none, "after", "before") and the page size."""

    filters: BoardFilters
    cursor: str
    size: int

    @property
    def key(self) -> tuple:
        f = self.filters
        return (
            bool(f.rep),
            bool(f.stage),
            f.bucket,
            bool(f.standing),
            bool(f.payment_option),
            bool(f.q),
            f.sort,
            self.cursor,
            self.size,
        )


def _page_query(user: User, shape: _Shape, values: dict) -> QuerySet:
    """``board_page``'s query of ``board_deals(user, filters, with_reminder_details=True)``,
    every value a slot: built and compiled once per team and ``_Shape``."""
    at = {name: Slot(name, _slot_field(value)) for name, value in values.items()}
    filters = shape.filters
    deals = sort_deals(
        _filtered(not_paid_yet(user), filters, at),
        filters,
        with_reminder_details=True,
        now=at["now"],
    )
    column, descending = _sort_of(filters)
    going_back = shape.cursor == "before"
    if shape.cursor:
        deals = _beyond(deals, column, descending != going_back, at["cursor_key"], at["cursor_pk"])
    if going_back:
        deals = deals.reverse()
    return deals.values_list(*_ROW_COLUMNS)[: shape.size + 1]


_PAGE = Compiled(_page_query)


def board_rows_page(
    user: User, filters: BoardFilters, after: str = "", before: str = "", size=PAGE_SIZE
) -> BoardPage:
    """The board's page for ``user``: ``board_page`` of ``board_deals(user, filters,
    with_reminder_details=True)``, its rows ``BoardRow`` values. Its query is the
    same query, compiled once per team and shape (``_page_query``): a board read
    costs its SQL, not the ~5 ms of building and compiling it again (issue 23)."""
    team = where_key(Deal.objects.visible_to(user))
    column, _descending = _sort_of(filters)
    cursor = decode_cursor(after or before, column) if (after or before) else None
    if team is None:  # sees no deal
        return BoardPage([], None, None, True)
    direction = "" if cursor is None else ("before" if before else "after")
    values = {
        name: value
        for name, value in _filter_values(filters, timezone.localdate()).items()
        if value  # a filter left empty is not in the query
    }
    values["now"] = timezone.now()
    if cursor is not None:
        values["cursor_key"], values["cursor_pk"] = cursor
    shape = _Shape(filters, direction, size)
    rows = _PAGE.rows(user, shape, values, key=(team, shape.key), **values)
    return _paged(
        [BoardRow(*row) for row in rows],
        size,
        cursor,
        direction == "before",
        column,
        BoardRow.key,
    )
