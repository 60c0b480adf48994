"""The Not paid yet board as CSV: exactly the filtered board, one line a deal, in the
labels the board shows. Streamed in chunks (flat memory at 1,000,000 deals)."""

import csv
from collections.abc import Iterator
from contextlib import closing
from datetime import date, datetime

from django.db import connections, transaction
from django.db.models import QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from dashboards import board
from dashboards.spreadsheets import safe_cell
from pipeline import access
from pipeline.models import User
from pipeline.stages import Stage
from pipeline.terms import PaymentOption, Standing


class _Echo:
    def write(self, value):
        return value


CSV_HEADER = [
    "deal_id",
    "title",
    "customer",
    "company",
    "rep",
    "rep_name",
    "stage",
    "payment_option",
    "amount",
    "cleared",
    "outstanding",
    "promised_on",
    "age_days",
    "aging_bucket",
    "standing",
    "next_reminder",
]


# Rows a fetch from PostgreSQL's cursor: a few hundred kilobytes, however many deals.
FETCH_ROWS = 5000
# Lines a chunk of the response (about 80 kB).
CHUNK_LINES = 500
# Reminder times whose cell is kept (a few hundred kilobytes at most).
REMINDER_CELLS_KEPT = 10_000


def _streamed(rows: QuerySet) -> Iterator[tuple]:
    """``rows`` fetched a few thousand at a time (flat memory), in one read transaction.

    On PostgreSQL ``iterator()`` reads through a cursor, which the planner plans for
    the first tenth of its rows (``cursor_tuple_fraction``): at a million deals an
    index scan in promise order with one customer probe a deal, 24.0 s of SQL for
    599,128 rows. Told it will fetch them all, it hashes the customers in and
    sorts once: 6.7 s (same load). The setting is LOCAL to a transaction, which
    also spares the cursor Django declares WITH HOLD in autocommit (the server
    copying the whole result aside before the first fetch).
    """
    connection = connections[rows.db]
    if connection.vendor != "postgresql":
        yield from rows.iterator(chunk_size=FETCH_ROWS)
        return
    with transaction.atomic(using=rows.db):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        yield from rows.iterator(chunk_size=FETCH_ROWS)


def board_csv(user: User, filters: board.BoardFilters) -> Iterator[str]:
    """The CSV of ``user``'s board under ``filters``: the header, then ``CHUNK_LINES``
    lines a chunk. Every text cell goes through ``safe_cell``; numbers stay numbers."""
    today = timezone.localdate()
    zone = timezone.get_current_timezone()
    # The board's deals, in its order; the day of each promise in the user's zone
    # comes from the database (a date, not a timestamp to convert a row).
    deals = board.board_deals(user, filters).annotate(
        promised_on=TruncDate("promised_at", tzinfo=zone)
    )
    sellers = access.team_sellers(user)
    # Per rep, per promise day and per reminder time, the cells are worked out
    # once, not once a row.
    reps = {rep.pk: (safe_cell(rep.username), safe_cell(str(rep))) for rep in sellers}
    reps.setdefault(user.pk, (safe_cell(user.username), safe_cell(str(user))))
    days: dict = {}
    reminders: dict = {board.NO_REMINDER: ""}
    # The labels the board shows, not the codes stored: "On file", not "on_file".
    stages = {stage.value: stage.label for stage in Stage}
    standings = dict(Standing.choices)
    options = {value: label.split(" — ")[0] for value, label in PaymentOption.choices}
    # Plain tuples, not model instances, and CHUNK_LINES rows a chunk on the wire.
    columns = (
        "pk",
        "title",
        "customer__name",
        "customer__company",
        "rep_id",
        "stage",
        "payment_option",
        "amount",
        "cleared_amount",
        "outstanding_amount",
        "promised_on",
        "customer__standing",
        "next_reminder_at",
    )
    writer = csv.writer(_Echo())

    def promise_cells(promised_on: date) -> tuple[str, int, str]:
        cells = days.get(promised_on)
        if cells is None:
            age = (today - promised_on).days
            cells = days[promised_on] = (
                promised_on.isoformat(),
                age,
                board.bucket_for_age(age).key,
            )
        return cells

    def reminder_cell(due: datetime) -> str:
        # Reminders fall due at a few times of day (the morning hour...): at a
        # million deals, 21,557 distinct times for 716,728 open reminders.
        cell = reminders.get(due)
        if cell is None:
            cell = due.astimezone(zone).isoformat("T", "minutes")
            if len(reminders) < REMINDER_CELLS_KEPT:
                reminders[due] = cell
        return cell

    def line(row) -> str:
        pk, title, name, company, rep_id, stage, option = row[:7]
        amount, cleared, owed, promised, standing, due = row[7:]
        promised_on, age, bucket = promise_cells(promised)
        username, rep_name = reps.get(rep_id, (str(rep_id), str(rep_id)))
        # Every text cell through safe_cell (a customer named "=HYPERLINK(...)"
        # stays text); numbers stay numbers.
        return writer.writerow(
            [
                pk,
                safe_cell(title),
                safe_cell(name),
                safe_cell(company),
                username,
                rep_name,
                stages.get(stage, stage),
                options.get(option, option),
                f"{amount:.2f}",
                f"{cleared:.2f}",
                f"{owed:.2f}",
                promised_on,
                age,
                bucket,
                standings.get(standing, standing),
                reminder_cell(due),
            ]
        )

    def rows():
        yield writer.writerow(CSV_HEADER)
        chunk = []
        # Closed at once when the download is cut short: the read transaction ends.
        with closing(_streamed(deals.values_list(*columns))) as deal_rows:
            for row in deal_rows:
                chunk.append(line(row))
                if len(chunk) == CHUNK_LINES:
                    yield "".join(chunk)
                    chunk = []
        if chunk:
            yield "".join(chunk)

    return rows()
