"""The board's CSV export, byte for byte: what a manager downloads for a known team.

The file is pinned whole (header, quoting, labels, money, the promise day and the
next reminder in the manager's own time zone, formula cells as text), so a faster
export must write exactly the same bytes, in the board's order, for the same deals.
"""

import datetime
import zoneinfo
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboards import export
from pipeline.models import Deal, Role
from pipeline.stages import Stage
from reminders.models import ReminderKind, ReminderState
from tests.factories import DealFactory, ReminderFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def _utc(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts, tzinfo=datetime.UTC)


def _day(days_ago: int) -> datetime.date:
    return datetime.datetime.now(NEW_YORK).date() - datetime.timedelta(days=days_ago)


def _late_evening(days_ago: int) -> datetime.datetime:
    """23:30 in New York ``days_ago`` days ago: already the next day in UTC."""
    return datetime.datetime.combine(_day(days_ago), datetime.time(23, 30), tzinfo=NEW_YORK)


@pytest.fixture
def team(manager, other_rep):
    manager.time_zone = "America/New_York"
    manager.save(update_fields=["time_zone"])
    rep = UserFactory(
        username="ada", first_name="Ada", last_name="Byrne", role=Role.REP, manager=manager
    )
    # A username a spreadsheet would run, and no name: both cells are written as text.
    plus = UserFactory(
        username="+plus", first_name="", last_name="", role=Role.REP, manager=manager
    )
    deals = {
        "partial": DealFactory(
            rep=rep,
            title='Logo, "bold" & co',
            customer__name='=HYPERLINK("http://x","y")',
            customer__company="",
            customer__standing="good",
            payment_option="on_file",
            stage=Stage.DELIVERED,
            amount=Decimal("2500.00"),
            cleared_amount=Decimal("400.00"),
            received_amount=Decimal("400.00"),
            promised_at=_late_evening(45),
        ),
        "overdue": DealFactory(
            rep=rep,
            title="Two\nlines",
            customer__name="Zoë Ünicode",
            customer__company="-Minus Ltd",
            customer__standing="slow",
            payment_option="invoice",
            stage=Stage.DEPOSIT,
            amount=Decimal("800.50"),
            promised_at=_late_evening(91),
        ),
        "today": DealFactory(
            rep=rep,
            title="Plain",
            customer__name="Alpha",
            customer__company="Alpha Inc",
            customer__standing="new",
            payment_option="upfront",
            stage=Stage.PROMISED,
            amount=Decimal("1000.00"),
            promised_at=datetime.datetime.combine(_day(0), datetime.time(0, 5), tzinfo=NEW_YORK),
        ),
        "big": DealFactory(
            rep=plus,
            title="@mention",
            customer__name="\tTab Co",
            customer__company="Big; Corp",
            customer__standing="good",
            payment_option="invoice",
            stage=Stage.AUDIT_CONFIRMED,
            amount=Decimal("12345678.90"),
            cleared_amount=Decimal("0.01"),
            received_amount=Decimal("0.01"),
            promised_at=_late_evening(61),
        ),
    }
    # Never on this board: paid in full, lost, another team's.
    DealFactory(
        rep=rep,
        stage=Stage.PAYMENT_CLEARED,
        cleared_amount=Decimal("1000.00"),
        received_amount=Decimal("1000.00"),
    )
    DealFactory(rep=rep, stage=Stage.LOST, lost_reason="other")
    DealFactory(rep=other_rep)

    def remind(deal, due, state=ReminderState.SCHEDULED, **fields):
        ReminderFactory(deal=deal, due_at=due, state=state, **fields)

    remind(deals["partial"], _utc(2031, 7, 4, 15, 7, 59))  # summer: -04:00
    remind(deals["partial"], _utc(2031, 7, 5, 9, 0), kind=ReminderKind.PAYMENT_DUE)
    remind(deals["partial"], _utc(2019, 1, 1, 0, 0), ReminderState.DONE)  # closed: not the next
    remind(deals["overdue"], _utc(2020, 1, 2, 3, 4, 5), ReminderState.DUE)  # winter: -05:00
    # Snoozed: it counts from the end of its snooze, not from its first due time.
    remind(
        deals["today"],
        _utc(2020, 1, 1, 0, 0),
        ReminderState.SNOOZED,
        snoozed_until=_utc(2032, 2, 3, 12, 0, 30),
    )
    return {"rep": rep, "plus": plus, **deals}


HEADER = (
    "deal_id,title,customer,company,rep,rep_name,stage,payment_option,amount,cleared,"
    "outstanding,promised_on,age_days,aging_bucket,standing,next_reminder\r\n"
)


def _lines(team) -> dict[str, str]:
    return {
        "overdue": (
            f'{team["overdue"].pk},"Two\nlines",Zoë Ünicode,\'-Minus Ltd,ada,Ada Byrne,Deposit,'
            f"Invoice,800.50,0.00,800.50,{_day(91)},91,90+,Slow,2020-01-01T22:04-05:00\r\n"
        ),
        "big": (
            f"{team['big'].pk},'@mention,'\tTab Co,Big; Corp,'+plus,'+plus,Audit confirmed,"
            f"Invoice,12345678.90,0.01,12345678.89,{_day(61)},61,61-90,Good,\r\n"
        ),
        "partial": (
            f'{team["partial"].pk},"Logo, ""bold"" & co","\'=HYPERLINK(""http://x"",""y"")",,'
            f"ada,Ada Byrne,Delivered,On file,2500.00,400.00,2100.00,{_day(45)},45,31-60,Good,"
            "2031-07-04T11:07-04:00\r\n"
        ),
        "today": (
            f"{team['today'].pk},Plain,Alpha,Alpha Inc,ada,Ada Byrne,Promised,Upfront,"
            f"1000.00,0.00,1000.00,{_day(0)},0,0-30,New,2032-02-03T07:00-05:00\r\n"
        ),
    }


def _download(client, query: str = "") -> bytes:
    response = client.get(f"/board/export.csv{query}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return b"".join(response.streaming_content)


def test_the_export_is_these_bytes_in_the_boards_order(manager_client, team):
    lines = _lines(team)
    expected = HEADER + "".join(lines[key] for key in ("overdue", "big", "partial", "today"))
    assert _download(manager_client).decode() == expected


def test_a_filtered_sorted_export_is_the_same_lines_for_the_filtered_board(manager_client, team):
    lines = _lines(team)
    body = _download(manager_client, f"?rep={team['rep'].pk}&sort=-outstanding")
    expected = HEADER + "".join(lines[key] for key in ("partial", "today", "overdue"))
    assert body.decode() == expected


def test_an_empty_board_exports_the_header_alone(manager_client):
    assert _download(manager_client).decode() == HEADER


def test_the_export_reads_the_board_in_a_few_queries_however_many_deals(manager_client, team):
    for _ in range(30):
        DealFactory(rep=team["rep"])
    with CaptureQueriesContext(connection) as queries:
        body = _download(manager_client)
    assert body.count(b"\r\n") == 1 + 4 + 30  # the header and every deal
    # The session and the user, the team's names, the deals (on PostgreSQL with
    # the savepoint and setting of their read): not a query a row.
    sql = [query["sql"] for query in queries]
    assert len(sql) <= 9, sql
    assert len([q for q in sql if 'FROM "pipeline_deal"' in q]) == 1, sql


@pytest.mark.needs_postgres("the export's read transaction and its planner setting")
@pytest.mark.django_db(transaction=True)
def test_the_exports_planner_setting_ends_with_its_read(manager_client, team):
    _download(manager_client)
    with connection.cursor() as cursor:
        cursor.execute("SHOW cursor_tuple_fraction")
        assert cursor.fetchone()[0] == "0.1"  # the server's default, on the kept connection
    assert not connection.in_atomic_block


@pytest.mark.django_db(transaction=True)
def test_a_download_cut_short_ends_the_read_and_leaves_the_connection_usable(
    manager_client, team, monkeypatch
):
    monkeypatch.setattr(export, "CHUNK_LINES", 1)
    response = manager_client.get("/board/export.csv")
    chunks = iter(response.streaming_content)
    assert next(chunks).startswith(b"deal_id,")
    assert next(chunks).startswith(str(team["overdue"].pk).encode())  # mid-read
    response.close()  # the browser went away
    assert not connection.in_atomic_block
    assert Deal.objects.filter(rep=team["rep"]).count() == 5
