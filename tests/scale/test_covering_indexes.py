"""The reads every open page repeats are answered from an index alone.

At 1,000,000 deals a rep holds ~20,000 deals and thousands of open
reminders: reading each row from its table made the home's poll, its
"pending this month" and the customers list cost 30-400 ms (README,
Benchmark). These indexes cover what those queries read. Each test runs the
real query, then asks PostgreSQL for its plan with sequential and bitmap scans
off: an index that stopped covering a column the query reads (a new column in
the query, an index changed) shows up as an "Index Scan", not "Index Only Scan".

Which index PostgreSQL picks follows its statistics, and in a long run those
were whatever autovacuum last counted: often a table of a few rows, where a scan
of a foreign key's index costs what the covering index does (the pending money
test failed that way once, and passed alone). So a test that rests on that
choice (``@settled``) commits a small team's rows, its seller holding a fifth
of them, and settles the tables it reads (``_settle``) before asking for the
plan. The board's sorted tests do not rest on it: with sorts off, only the
index in the page's order can give its first page.
"""

import datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Payment, PaymentKind, PaymentMethodKind, PaymentStatus
from billing.reports import rep_month_figures
from dashboards import board
from pipeline.models import Customer, Deal, Role
from reminders.models import Reminder, ReminderState
from reminders.selectors import panel_version, reminders_due_count
from tests.factories import CustomerFactory, DealFactory, ReminderFactory, UserFactory

pytestmark = pytest.mark.needs_postgres("index-only scans and EXPLAIN are PostgreSQL's")

# Rows written inside a test's transaction are never all-visible, so there an
# index-only scan saves no table read and wins no choice: these tests commit.
settled = pytest.mark.django_db(transaction=True)

# The settled tests' team: the seller whose page it is holds a fifth of the rows, as
# a rep of a team does, so an index on the seller narrows the read and its covering
# columns spare the table.
TEAM_SIZE = 5
ROWS_EACH = 25


def _plans(run, needle: str, *, no_sort: bool = False) -> str:
    """The plan of the query ``run`` makes whose SQL starts with ``needle`` (or holds
    it), index scans only (and, with ``no_sort``, no sort node either)."""
    off = ["enable_seqscan", "enable_bitmapscan", *(["enable_sort"] if no_sort else [])]
    with CaptureQueriesContext(connection) as queries:
        run()
    [sql, *_] = [q["sql"] for q in queries.captured_queries if needle in q["sql"]]
    # SET LOCAL needs a transaction (a settled test has none open) and lasts until the
    # outermost one ends: reset, or the test's card number scan runs with scans off.
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in off:
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        for setting in off:
            cursor.execute(f"RESET {setting}")
    return plan


def _settle(*models) -> None:
    """``models``' tables as autovacuum leaves them in production: statistics read from
    the rows the test committed, every page all-visible.

    Rewritten first (``FULL``, which rebuilds their indexes): the rows earlier tests
    rolled back leave index pages behind that, next to a test's hundred rows, would
    weigh on the costs more than the rows themselves.
    """
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"VACUUM (FULL) {model._meta.db_table}")
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")


def _team(rep) -> list:
    """``rep`` and the other sellers of a team of ``TEAM_SIZE``."""
    others = [UserFactory(role=Role.REP, manager=rep.manager) for _ in range(TEAM_SIZE - 1)]
    return [rep, *others]


def _deals(seller, count: int = ROWS_EACH) -> list[Deal]:
    """``count`` deals sold by ``seller`` to one customer, written in one insert."""
    customer = CustomerFactory(owner=seller)
    return Deal.objects.bulk_create(
        DealFactory.build(rep=seller, customer=customer) for _ in range(count)
    )


def _reminders(team, *, open_each: int) -> None:
    """For each seller, ``open_each`` open reminders due an hour ago; their other deals'
    reminders done (the history an owner's open reminders sit among)."""
    due = timezone.now() - datetime.timedelta(hours=1)
    Reminder.objects.bulk_create(
        ReminderFactory.build(
            deal=deal,
            owner=seller,
            due_at=due,
            state=ReminderState.DUE if n < open_each else ReminderState.DONE,
        )
        for seller in team
        for n, deal in enumerate(_deals(seller))
    )
    _settle(Reminder)


@settled
def test_the_panels_poll_reads_only_the_open_reminders_index(rep):
    _reminders(_team(rep), open_each=10)
    plan = _plans(lambda: panel_version(rep), 'AS "latest"')
    assert "Index Only Scan using reminder_open_by_owner" in plan, plan


@settled
def test_a_sellers_pending_money_reads_only_indexes(rep):
    # Each seller's month: five payments pending, the others cleared last month.
    now = timezone.now()
    last_month = now - datetime.timedelta(days=40)
    Payment.objects.bulk_create(
        Payment(
            deal=deal,
            kind=PaymentKind.FINAL,
            method=PaymentMethodKind.CHECK,
            amount=Decimal("300.00"),
            recorded_by=seller,
            status=PaymentStatus.PENDING if n < 5 else PaymentStatus.CLEARED,
            recorded_at=now if n < 5 else last_month,
            cleared_at=None if n < 5 else last_month,
        )
        for seller in _team(rep)
        for n, deal in enumerate(_deals(seller))
    )
    _settle(Payment, Deal)
    assert rep_month_figures(rep).pending == Decimal("1500.00")
    plan = _plans(lambda: rep_month_figures(rep), '"billing_payment"."amount"')
    assert "Index Only Scan using pending_payment_queue" in plan, plan
    assert "Index Only Scan using deal_seller_promised" in plan, plan


@settled
def test_the_customers_a_rep_sells_to_come_from_the_deals_index(rep):
    [sold_to, *others] = [_deals(seller)[0].customer for seller in _team(rep)]
    _settle(Deal, Customer)
    plan = _plans(lambda: list(Customer.objects.visible_to(rep)), '"U0"."rep_id"')
    assert "Index Only Scan using deal_rep_customer" in plan, plan
    assert list(Customer.objects.visible_to(rep)) == [sold_to]


@settled
def test_the_nav_badges_count_reads_only_the_open_reminders_index(rep):
    _reminders(_team(rep), open_each=10)
    assert reminders_due_count(rep) == 10
    plan = _plans(lambda: reminders_due_count(rep), "UNION ALL")
    # The due half (the thousands) from the covering index alone; the snoozed half
    # (a few) off its own small partial index.
    assert "Index Only Scan using reminder_open_by_owner" in plan, plan
    assert "using reminder_snoozed_wake" in plan or plan.count("reminder_open_by_owner") == 2, plan


@pytest.mark.parametrize(
    ("sort", "index"),
    [
        ("-outstanding", "deal_not_paid_by_outstanding"),
        ("outstanding", "deal_not_paid_by_outstanding"),
        ("-amount", "deal_not_paid_by_amount"),
    ],
)
def test_the_board_sorted_by_money_walks_its_index(manager, rep, sort, index):
    # At 1,000,000 deals a sort of every unpaid deal was 1.5 s a page: the first
    # page must come off the index in its order, stopping after a page.
    for amount in ("300.00", "900.00", "600.00"):
        DealFactory(rep=rep, amount=Decimal(amount))
    filters = board.BoardFilters.from_query({"sort": sort})
    deals = board.board_deals(manager, filters)
    page = board.board_page(deals, filters)
    amounts = [d.amount for d in page.deals]
    assert amounts == sorted(amounts, reverse=sort.startswith("-"))
    plan = _plans(
        lambda: board.board_page(board.board_deals(manager, filters), filters),
        'FROM "pipeline_deal"',
        no_sort=True,
    )
    assert f"using {index}" in plan, plan
