"""The board's own page (``board_rows_page``): the query of ``board_page(board_deals(…))``
compiled once per team and shape, its rows read as values. It must be that page,
row for row and cursor for cursor, for every sort, filter and direction, for
whoever reads it, at whatever moment."""

import dataclasses
import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboards import board, board_rows
from dashboards.board import BoardFilters, board_deals, board_page
from dashboards.board_rows import BoardRow, board_rows_page
from pipeline.models import Deal
from pipeline.stages import Stage
from pipeline.terms import PaymentOption, Standing
from reminders.models import ReminderKind, ReminderState
from tests.factories import DealFactory, ReminderFactory, UserFactory

pytestmark = pytest.mark.django_db

SORTS = [f"{sign}{key}" for key in board.SORTS for sign in ("", "-")]
FILTERS = [
    {},
    {"stage": Stage.DELIVERED},
    {"bucket": "0-30"},
    {"bucket": "90+"},
    {"standing": Standing.SLOW, "payment_option": PaymentOption.INVOICE},
    {"q": "ac%e_"},
    {"q": "acme"},
]


def _ago(days: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)


@pytest.fixture
def team(manager, rep, teammate, other_rep):
    """Deals of every stage, age, amount and standing, with ties on every sort key,
    open reminders overdue, due and to come; and another team's deals."""
    stages = [Stage.PROMISED, Stage.DEPOSIT, Stage.AUDIT_CONFIRMED, Stage.DELIVERED]
    names = ["Acme", "ac%e_ Ltd", "Zed", "acme"]
    for index in range(26):
        deal = DealFactory(
            rep=(rep, teammate)[index % 2],
            amount=Decimal(500 + 100 * (index % 3)),
            promised_at=_ago([3, 3, 40, 75, 120, 200][index % 6]),
            stage=stages[index % 4],
            payment_option=(PaymentOption.INVOICE, PaymentOption.UPFRONT)[index % 3 == 0],
            customer__name=names[index % 4],
            customer__company=("Acme Corp", "")[index % 2],
            customer__standing=(Standing.GOOD, Standing.SLOW)[index % 3 == 1],
        )
        for hours, state in [(-48, ReminderState.DUE), (-2, ReminderState.DUE), (30, None)][
            : index % 4
        ]:
            ReminderFactory(
                deal=deal,
                kind=ReminderKind.NEXT_STEP_DUE,
                occurrence=f"{deal.pk}-{hours}",
                owner=deal.rep,
                due_at=timezone.now() + datetime.timedelta(hours=hours),
                state=state or ReminderState.SCHEDULED,
            )
    for _ in range(3):
        DealFactory(rep=other_rep, customer__name="Acme")
    return manager


def _orm_page(user, filters, after="", before="", size=4):
    deals = board_deals(user, filters, with_reminder_details=True)
    return board_page(deals, filters, after=after, before=before, size=size)


# The columns a row and an annotated deal both have by the same name; the
# customer's and the rep's are compared by what the row shows.
_SAME_NAMED = [
    f.name
    for f in dataclasses.fields(BoardRow)
    if not f.name.startswith(("customer_", "rep_")) and f.name != "stage_order"
]


def _as_values(row) -> tuple:
    """What a board row shows, from a model instance (the ORM page) or a BoardRow."""
    if isinstance(row, Deal):
        names = (row.customer.name, row.customer.standing, str(row.rep))
    else:
        names = (row.customer_name, row.customer_standing, row.rep_name)
    return (*[getattr(row, name) for name in _SAME_NAMED], *names)


def _same(compiled, orm) -> None:
    assert [_as_values(row) for row in compiled.deals] == [_as_values(row) for row in orm.deals]
    assert (compiled.next_cursor, compiled.prev_cursor, compiled.is_first) == (
        orm.next_cursor,
        orm.prev_cursor,
        orm.is_first,
    )


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: ",".join(p) or "unfiltered")
def test_every_page_is_the_orm_page_for_every_sort_forwards_and_back(team, params):
    for sort in SORTS:
        filters = BoardFilters.from_query({**params, "sort": sort})
        assert not filters.errors
        pages, after = [], ""
        while True:  # forwards to the last page
            page, orm = (
                board_rows_page(team, filters, after=after, size=4),
                _orm_page(team, filters, after=after),
            )
            _same(page, orm)
            pages.append(page)
            if not page.next_cursor:
                break
            after = page.next_cursor
        if params in ({}, {"stage": Stage.DELIVERED}):
            assert len(pages) > 1, sort  # the walk crossed pages
        page = pages[-1]
        while page.prev_cursor:  # and back to the first
            before = page.prev_cursor
            page = board_rows_page(team, filters, before=before, size=4)
            _same(page, _orm_page(team, filters, before=before))
        assert page.is_first


def test_each_person_reads_their_own_teams_page(team, other_rep, auditor):
    filters = BoardFilters()
    other_manager = other_rep.manager
    root = UserFactory(username="root", is_superuser=True)
    for user in (team, other_manager, root, team, other_manager):  # each key, twice
        _same(board_rows_page(user, filters, size=100), _orm_page(user, filters, size=100))
    assert {row.pk for row in board_rows_page(other_manager, filters).deals} == set(
        Deal.objects.filter(rep=other_rep).values_list("pk", flat=True)
    )
    assert len(board_rows_page(root, filters, size=100).deals) == 29
    empty = board_rows_page(auditor, filters)
    assert empty.deals == [] and empty.is_first and not empty.next_cursor


def test_a_forged_cursor_is_the_first_page(team):
    filters = BoardFilters.from_query({"sort": "outstanding"})
    first = board_rows_page(team, filters, size=4)
    wrong_type = board.encode_cursor(timezone.now(), 1)  # a moment where an amount belongs
    for cursor in ("not-a-cursor", wrong_type, "W1sxXSwxXQ"):
        for page in (
            board_rows_page(team, filters, after=cursor, size=4),
            board_rows_page(team, filters, before=cursor, size=4),
        ):
            _same(page, first)


def test_the_query_is_built_once_per_team_and_shape_and_costs_one_query(team, monkeypatch):
    built = []
    monkeypatch.setattr(board_rows._PAGE, "_compiled", {})
    monkeypatch.setattr(board_rows._PAGE, "_model", Deal, raising=False)  # its database known
    monkeypatch.setattr(
        board_rows._PAGE, "build", lambda *a: built.append(a) or board_rows._page_query(*a)
    )
    board_rows_page(team, BoardFilters.from_query({"stage": Stage.DELIVERED}))
    filters = BoardFilters.from_query({"stage": Stage.DEPOSIT})
    with CaptureQueriesContext(connection) as read:
        page = board_rows_page(team, filters)
    assert len(read.captured_queries) == 1 and page.deals
    assert len(built) == 1  # the stage is a value
    first = page.deals[0]
    board_rows_page(team, filters, after=board.encode_cursor(first.promised_at, first.pk))
    assert len(built) == 2  # a cursor is another shape
    board_rows_page(team, BoardFilters.from_query({"stage": Stage.DEPOSIT, "sort": "amount"}))
    assert len(built) == 3


def test_the_moment_is_read_at_each_page_not_frozen_at_the_first(team, rep, monkeypatch):
    deal = DealFactory(rep=rep, promised_at=_ago(1), customer__name="Moment")
    later = timezone.now() + datetime.timedelta(hours=2)
    ReminderFactory(
        deal=deal,
        kind=ReminderKind.NEXT_STEP_DUE,
        occurrence="now",
        owner=rep,
        due_at=timezone.now() - datetime.timedelta(hours=1),
        state=ReminderState.DUE,
    )
    ReminderFactory(
        deal=deal,
        kind=ReminderKind.NEXT_STEP_DUE,
        occurrence="soon",
        owner=rep,
        due_at=timezone.now() + datetime.timedelta(hours=1),
    )
    filters = BoardFilters.from_query({"q": "Moment"})

    def coming():
        return board_rows_page(team, filters).deals[0].coming_reminder_at

    assert coming() is not None  # the reminder an hour away is still to come
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert coming() is None  # two hours on, it is not
    # And the day: a deal 29 days old today is in 0-30; 31 days on, in 31-60.
    monkeypatch.undo()
    young = DealFactory(rep=rep, promised_at=_ago(29), customer__name="Young")
    bucket = BoardFilters.from_query({"bucket": "0-30", "q": "Young"})
    assert [row.pk for row in board_rows_page(team, bucket).deals] == [young.pk]
    monkeypatch.setattr(
        timezone, "localdate", lambda *a: timezone.now().date() + datetime.timedelta(days=31)
    )
    assert board_rows_page(team, bucket).deals == []
