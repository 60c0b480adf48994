"""The Not paid yet board: totals, buckets, filters, sorting, keyset pages, CSV."""

import csv
import datetime
import io
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import services as billing
from dashboards.board import BoardFilters, board_deals, board_page, decode_cursor
from dashboards.totals import board_totals
from pipeline.models import Deal, Role
from pipeline.stages import Stage
from tests.factories import CustomerFactory, DealFactory, UserFactory

pytestmark = pytest.mark.django_db


def days_ago(days: int) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)


@pytest.fixture
def fixture(rep, teammate, manager, other_rep):
    """A hand-computed team: who owes what, how old, what cleared and bounced."""
    deals = {
        # 10 days old, promised, nothing paid: 1,000.00 outstanding in 0-30.
        "fresh": DealFactory(
            rep=rep, amount=Decimal("1000.00"), promised_at=days_ago(10), customer__name="Alpha"
        ),
        # 45 days old, delivered, 400 of 2,500 cleared: 2,100.00 outstanding in 31-60.
        "partial": DealFactory(
            rep=rep,
            amount=Decimal("2500.00"),
            promised_at=days_ago(45),
            stage=Stage.DELIVERED,
            customer__name="Bravo",
        ),
        # 75 days old, delivered; its 800 check bounced: 800.00 outstanding in 61-90.
        "bounced": DealFactory(
            rep=teammate,
            amount=Decimal("800.00"),
            promised_at=days_ago(75),
            stage=Stage.DELIVERED,
            customer__name="Charlie",
        ),
        # 120 days old, deposit stage, rotting: 300.00 outstanding in 90+.
        "old": DealFactory(
            rep=teammate,
            amount=Decimal("300.00"),
            promised_at=days_ago(120),
            stage=Stage.DEPOSIT,
            stage_changed_at=days_ago(100),
            customer__name="Delta",
        ),
        # Paid and cleared, lost, another team: never on this board.
        "paid": DealFactory(rep=rep, amount=Decimal("999.00"), stage=Stage.PAYMENT_CLEARED),
        "lost": DealFactory(
            rep=rep, amount=Decimal("999.00"), stage=Stage.LOST, lost_reason="other"
        ),
        "foreign": DealFactory(rep=other_rep, amount=Decimal("999.00")),
        # Paid in full upfront, waiting for delivery: open, but nothing is owed.
        "prepaid": DealFactory(
            rep=rep, amount=Decimal("500.00"), stage=Stage.DEPOSIT, payment_option="upfront"
        ),
    }
    upfront = billing.payment_record(
        deal_id=deals["prepaid"].pk,
        recorded_by=rep,
        kind="final",
        method="card",
        amount=Decimal("500.00"),
    )
    billing.payment_clear(payment_id=upfront.pk, actor=manager)
    partial = billing.payment_record(
        deal_id=deals["partial"].pk,
        recorded_by=rep,
        kind="instalment",
        method="bank_transfer",
        amount=Decimal("400.00"),
    )
    billing.payment_clear(payment_id=partial.pk, actor=manager)
    check = billing.payment_record(
        deal_id=deals["bounced"].pk,
        recorded_by=teammate,
        kind="final",
        method="check",
        amount=Decimal("800.00"),
    )
    billing.payment_clear(payment_id=check.pk, actor=manager)
    billing.payment_bounce(
        payment_id=check.pk,
        actor=manager,
        reason="Insufficient funds",
    )
    for deal in deals.values():
        deal.refresh_from_db()
    return deals


def test_totals_and_buckets_match_the_hand_computed_figures(manager, fixture):
    totals = board_totals(manager)
    assert totals.count == 4
    assert totals.outstanding == Decimal("4200.00")
    by_stage = {row["stage"]: (row["count"], row["outstanding"]) for row in totals.by_stage}
    assert by_stage == {
        Stage.PROMISED: (1, Decimal("1000.00")),
        Stage.DEPOSIT: (1, Decimal("300.00")),
        Stage.AUDIT_CONFIRMED: (0, Decimal("0.00")),
        Stage.DELIVERED: (2, Decimal("2900.00")),
    }
    by_bucket = {row["bucket"].key: (row["count"], row["outstanding"]) for row in totals.by_bucket}
    assert by_bucket == {
        "0-30": (1, Decimal("1000.00")),
        "31-60": (1, Decimal("2100.00")),
        "61-90": (1, Decimal("800.00")),
        "90+": (1, Decimal("300.00")),
    }
    assert (totals.rotting_count, totals.rotting_sum) == (1, Decimal("300.00"))


def test_a_bounce_puts_the_money_back_on_the_board(fixture):
    assert fixture["bounced"].cleared_amount == Decimal("0.00")
    assert fixture["partial"].cleared_amount == Decimal("400.00")


def test_the_board_shows_only_the_managers_team_and_only_unpaid_deals(manager, fixture):
    shown = {deal.pk for deal in board_deals(manager, BoardFilters())}
    expected = {fixture[name].pk for name in ("fresh", "partial", "bounced", "old")}
    assert shown == expected


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"stage": "delivered"}, {"partial", "bounced"}),
        ({"bucket": "31-60"}, {"partial"}),
        ({"bucket": "90+"}, {"old"}),
        ({"q": "charl"}, {"bounced"}),
        ({"stage": "delivered", "bucket": "61-90"}, {"bounced"}),
        ({"payment_option": "upfront"}, set()),
        ({"standing": "new"}, {"fresh", "partial", "old"}),
    ],
)
def test_filters_combine(manager, fixture, params, names):
    shown = {d.pk for d in board_deals(manager, BoardFilters.from_query(params))}
    assert shown == {fixture[name].pk for name in names}


def test_the_rep_filter(manager, teammate, fixture):
    filters = BoardFilters.from_query({"rep": str(teammate.pk)})
    assert {d.pk for d in board_deals(manager, filters)} == {
        fixture["bounced"].pk,
        fixture["old"].pk,
    }


def test_the_slow_standing_filter_finds_the_customer_whose_check_bounced(manager, fixture):
    filters = BoardFilters.from_query({"standing": "slow"})
    assert [d.pk for d in board_deals(manager, filters)] == [fixture["bounced"].pk]


@pytest.mark.parametrize(
    ("sort", "first", "last"),
    [
        ("-age", "old", "fresh"),
        ("age", "fresh", "old"),
        ("-outstanding", "partial", "old"),
        ("outstanding", "old", "partial"),
        ("customer", "fresh", "old"),
        ("-customer", "old", "fresh"),
        ("stage", "fresh", "bounced"),
        ("-amount", "partial", "old"),
        ("cleared", "fresh", "partial"),
    ],
)
def test_every_column_sorts(manager, fixture, sort, first, last):
    deals = list(board_deals(manager, BoardFilters.from_query({"sort": sort})))
    assert deals[0].pk == fixture[first].pk
    assert deals[-1].pk == fixture[last].pk


def test_unknown_filter_values_are_ignored_with_a_note(manager, fixture):
    filters = BoardFilters.from_query({"stage": "paid_in_gold", "sort": "secret_column"})
    assert filters.stage == "" and filters.sort == "-age"
    assert filters.errors == ["Unknown stage “paid_in_gold” ignored."]


@pytest.mark.parametrize(
    "sort",
    [
        "-age",
        "age",
        "outstanding",
        "-customer",
        "stage",
        "rep",
        "standing",
        "next_reminder",
        "-cleared",
    ],
)
def test_keyset_pages_walk_every_deal_once_forwards_and_backwards(manager, rep, sort):
    for index in range(23):
        DealFactory(rep=rep, amount=Decimal(100 + index % 5), promised_at=days_ago(index % 7))
    filters = BoardFilters.from_query({"sort": sort})
    deals = board_deals(manager, filters)
    everything = [d.pk for d in deals]
    seen, pages, after = [], [], ""
    while True:
        page = board_page(deals, filters, after=after, size=5)
        pages.append(page)
        seen += [d.pk for d in page.deals]
        if not page.next_cursor:
            break
        after = page.next_cursor
    assert seen == everything
    assert pages[0].is_first and not pages[1].is_first
    # Back from the last page, one page at a time, to the first.
    back = []
    page = pages[-1]
    while page.prev_cursor:
        page = board_page(deals, filters, before=page.prev_cursor, size=5)
        back = [d.pk for d in page.deals] + back
    assert back == everything[: len(back)] and page.is_first


def test_a_tampered_cursor_falls_back_to_the_first_page(manager, fixture):
    filters = BoardFilters()
    page = board_page(board_deals(manager, filters), filters, after="not-a-cursor")
    assert page.is_first and len(page.deals) == 4
    assert decode_cursor("!!!") is None


def test_the_board_page_and_the_export_agree(manager_client, fixture):
    board = manager_client.get("/board/?stage=delivered&sort=-outstanding")
    assert board.status_code == 200
    export = manager_client.get("/board/export.csv?stage=delivered&sort=-outstanding")
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [int(r["deal_id"]) for r in rows] == [fixture["partial"].pk, fixture["bounced"].pk]
    assert [r["outstanding"] for r in rows] == ["2100.00", "800.00"]
    assert rows[0]["cleared"] == "400.00" and rows[0]["aging_bucket"] == "31-60"
    assert rows[1]["standing"] == "Slow"
    for row in rows:
        assert f"#{row['deal_id']} " in board.text


def test_the_board_escapes_what_people_typed_in_its_rows(manager_client, rep):
    rep.first_name, rep.last_name = "<i>Ann", "O'Neil"
    rep.save()
    deal = DealFactory(
        rep=rep, title='<script>alert("t")</script>', customer__name="<b>Evil</b> & Co"
    )
    html = manager_client.get("/board/").text
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in html
    assert f"#{deal.pk} &lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;" in html
    assert "&lt;i&gt;Ann O&#x27;Neil" in html
    assert "<b>Evil" not in html and "<script>alert" not in html and "<i>Ann" not in html


def test_the_month_per_rep_shows_promised_cleared_and_the_share_that_cleared(
    manager_client, manager, rep, teammate
):
    deal = DealFactory(rep=rep, amount=Decimal("1000.00"), stage=Stage.DELIVERED)
    payment = billing.payment_record(
        deal_id=deal.pk,
        recorded_by=rep,
        kind="instalment",
        method="bank_transfer",
        amount=Decimal("666.66"),
    )
    billing.payment_clear(payment_id=payment.pk, actor=manager)
    html = manager_client.get(f"/board/?rep={teammate.pk}").text
    rows = dict(re.findall(r'<tr><td><a href="\?rep=(\d+)">[^<]*</a></td>(.*?)</tr>', html))
    cells = lambda pk: re.findall(r'<td class="num">([^<]*)</td>', rows[str(pk)])  # noqa: E731
    assert cells(rep.pk) == ["$1,000.00", "$666.66", "67%"]
    assert cells(teammate.pk) == ["$0.00", "$0.00", "—"]  # nothing promised: no share
    assert f'<option value="{teammate.pk}" selected>' in html  # the filter shown stays chosen
    assert f'<option value="{rep.pk}">' in html


def test_a_manager_without_reps_is_told_so_on_the_board(manager_client):
    html = manager_client.get("/board/").text
    assert "No reps on your team yet." in html


def _disputed(rep, name):
    return DealFactory(
        rep=rep, customer__name=name, audit_flag="disputed", audit_flag_at=timezone.now()
    )


@pytest.mark.parametrize("path", ["/board/", "/"])  # the board and the manager's home
def test_sales_disputed_at_audit_are_listed_apart_at_one_query_however_many(
    manager_client, rep, path
):
    first = _disputed(rep, "Echo")
    with CaptureQueriesContext(connection) as one:
        manager_client.get(path)
    more = [_disputed(rep, "Foxtrot"), _disputed(rep, "Golf")]
    with CaptureQueriesContext(connection) as three:
        html = manager_client.get(path).text
    listed = html.split('id="disputed-at-audit"')[1].split("</article>")[0]
    for deal in (first, *more):
        assert f"#{deal.pk} {deal.customer.name} — {deal.title}" in listed
    assert listed.count(str(rep)) == 3
    assert len(three.captured_queries) == len(one.captured_queries)


def test_reps_and_auditors_cannot_open_the_board(rep_client, auditor_client):
    for client in (rep_client, auditor_client):
        assert client.get("/board/").status_code == 403
        assert client.get("/board/export.csv").status_code == 403
        assert client.get("/board/charts/").status_code == 403


def test_htmx_filtering_swaps_only_the_table(manager_client, fixture):
    response = manager_client.get(
        "/board/?bucket=90%2B", headers={"HX-Request": "true", "HX-Target": "board-table"}
    )
    assert response.text.lstrip().startswith('<div id="board-table">')
    assert "Delta" in response.text and "Alpha" not in response.text


def test_charts_render_with_every_figure_written_out(manager_client, fixture):
    response = manager_client.get("/board/charts/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.text.count("<svg") == 3
    assert "Outstanding by age since the promise" in response.text
    assert "2,100" in response.text  # the 31-60 bucket, as text beside its bar


def _team_of(manager, size: int) -> None:
    rep = UserFactory(role=Role.REP, manager=manager)
    customers = [CustomerFactory(owner=rep) for _ in range(5)]
    for index in range(size):
        DealFactory(rep=rep, customer=customers[index % 5], promised_at=days_ago(index % 100))


@pytest.mark.parametrize("size", [5, 120])
def test_the_board_costs_at_most_12_queries_whatever_the_size(
    manager_client, manager, size, django_assert_max_num_queries
):
    _team_of(manager, size)
    with django_assert_max_num_queries(12):
        response = manager_client.get("/board/?sort=-outstanding")
    assert response.status_code == 200
    with django_assert_max_num_queries(12):
        deep = manager_client.get("/board/?bucket=61-90&stage=promised")
    assert deep.status_code == 200
    assert Deal.objects.count() == size
