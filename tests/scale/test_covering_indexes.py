"""The reads every open page repeats are answered from an index alone.

At 1,000,000 deals a rep holds ~20,000 deals and thousands of open
reminders: reading each row from its table made the home's poll, its
"pending this month" and the customers list cost 30-400 ms (README,
Benchmark). These indexes cover what those queries read. Each test runs the
real query, then asks PostgreSQL for its plan with sequential and bitmap scans
off: an index that stopped covering a column the query reads (a new column in
the query, an index changed) shows up as an "Index Scan", not "Index Only Scan".
"""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.reports import rep_month_figures
from dashboards import board
from pipeline.models import Customer
from reminders.selectors import panel_version, reminders_due_count
from tests.factories import DealFactory, PaymentFactory, ReminderFactory

pytestmark = pytest.mark.needs_postgres("index-only scans and EXPLAIN are PostgreSQL's")


def _plans(run, needle: str, *, no_sort: bool = False) -> str:
    """The plan of the query ``run`` makes whose SQL starts with ``needle`` (or holds
    it), index scans only (and, with ``no_sort``, no sort node either)."""
    off = ["enable_seqscan", "enable_bitmapscan", *(["enable_sort"] if no_sort else [])]
    with CaptureQueriesContext(connection) as queries:
        run()
    [sql, *_] = [q["sql"] for q in queries.captured_queries if needle in q["sql"]]
    with connection.cursor() as cursor:
        for setting in off:
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        for setting in off:
            cursor.execute(f"RESET {setting}")
    return plan


def test_the_panels_poll_reads_only_the_open_reminders_index(rep):
    for _ in range(3):
        ReminderFactory(deal=DealFactory(rep=rep))
    plan = _plans(lambda: panel_version(rep), 'AS "latest"')
    assert "Index Only Scan using reminder_open_by_owner" in plan, plan


def test_a_sellers_pending_money_reads_only_indexes(rep):
    PaymentFactory(deal=DealFactory(rep=rep, amount=Decimal("900.00")), amount=Decimal("300.00"))
    assert rep_month_figures(rep).pending == Decimal("300.00")
    plan = _plans(lambda: rep_month_figures(rep), '"billing_payment"."amount"')
    assert "Index Only Scan using pending_payment_queue" in plan, plan
    assert "Index Only Scan using deal_seller_promised" in plan, plan


def test_the_customers_a_rep_sells_to_come_from_the_deals_index(rep):
    deal = DealFactory(rep=rep)
    plan = _plans(lambda: list(Customer.objects.visible_to(rep)), '"U0"."rep_id"')
    assert "Index Only Scan using deal_rep_customer" in plan, plan
    assert deal.customer in Customer.objects.visible_to(rep)


def test_the_nav_badges_count_reads_only_the_open_reminders_index(rep):
    ReminderFactory(deal=DealFactory(rep=rep))
    assert reminders_due_count(rep) == 1
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
