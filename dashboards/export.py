"""The Not paid yet board as CSV: exactly the filtered board, one line a deal, in the
labels the board shows. Streamed in chunks (flat memory at 100,000 rows)."""

import csv
from collections.abc import Iterator
from datetime import datetime

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


def board_csv(user: User, filters: board.BoardFilters) -> Iterator[str]:
    """The CSV of ``user``'s board under ``filters``: the header, then about 500 lines
    a chunk. Every text cell goes through ``safe_cell``; numbers stay numbers."""
    deals = board.board_deals(user, filters)
    today = timezone.localdate()
    zone = timezone.get_current_timezone()
    sellers = access.team_sellers(user)
    # Per rep and per promise day, the cells are worked out once, not once a row
    # (the export's time is Python's: about 60,000 rows a page of names and dates).
    reps = {rep.pk: (safe_cell(rep.username), safe_cell(str(rep))) for rep in sellers}
    reps.setdefault(user.pk, (safe_cell(user.username), safe_cell(str(user))))
    days: dict = {}
    # The labels the board shows, not the codes stored: "On file", not "on_file".
    stages = {stage.value: stage.label for stage in Stage}
    standings = dict(Standing.choices)
    options = {value: label.split(" — ")[0] for value, label in PaymentOption.choices}
    # Plain tuples, not model instances, and about 500 rows a chunk on the wire.
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
        "promised_at",
        "customer__standing",
        "next_reminder_at",
    )
    writer = csv.writer(_Echo())

    def promise_cells(promised: datetime) -> tuple[str, int, str]:
        promised_on = promised.astimezone(zone).date()
        cells = days.get(promised_on)
        if cells is None:
            age = (today - promised_on).days
            cells = days[promised_on] = (
                promised_on.isoformat(),
                age,
                board.bucket_for_age(age).key,
            )
        return cells

    def line(row) -> str:
        pk, title, name, company, rep_id, stage, option = row[:7]
        amount, cleared, owed, promised, standing, due = row[7:]
        promised_on, age, bucket = promise_cells(promised)
        username, rep_name = reps.get(rep_id, (str(rep_id), str(rep_id)))
        reminder = (
            "" if due == board.NO_REMINDER else due.astimezone(zone).isoformat("T", "minutes")
        )
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
                reminder,
            ]
        )

    def rows():
        yield writer.writerow(CSV_HEADER)
        chunk = []
        for row in deals.values_list(*columns).iterator(chunk_size=2000):
            chunk.append(line(row))
            if len(chunk) == 500:
                yield "".join(chunk)
                chunk = []
        if chunk:
            yield "".join(chunk)

    return rows()
