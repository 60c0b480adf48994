"""The board's CSV export and the deal import are safe to open in a spreadsheet."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from dashboards.spreadsheets import FORMULA_STARTS, cell_problem, safe_cell
from pipeline.models import Deal
from pipeline.stages import Stage
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db

FORMULAS = [
    '=HYPERLINK("http://x","y")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _export(client, query: str = "") -> list[dict]:
    response = client.get(f"/board/export.csv{query}")
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("value", FORMULAS)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(value):
    assert safe_cell(value) == "'" + value
    assert value[0] in FORMULA_STARTS


@pytest.mark.parametrize("value", ["Dana Whitfield", "", "1 Main St", "'quoted", "O'Brien"])
def test_an_ordinary_cell_is_written_as_it_is(value):
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", FORMULAS)
def test_the_board_export_writes_a_formula_customer_as_text(manager_client, rep, value):
    deal = DealFactory(rep=rep, customer__name=value, customer__company=value, title=value)
    (row,) = _export(manager_client)
    assert int(row["deal_id"]) == deal.pk
    for column in ("customer", "company", "title"):
        assert row[column] == "'" + value


def test_the_export_uses_the_labels_on_the_board_and_has_the_title(manager_client, rep):
    DealFactory(
        rep=rep,
        stage=Stage.DELIVERED,
        payment_option="on_file",
        customer__standing="good",
        title="Shopify setup",
        amount=Decimal("1250.00"),
    )
    (row,) = _export(manager_client)
    assert (row["stage"], row["payment_option"], row["standing"]) == (
        "Delivered",
        "On file",
        "Good",
    )
    assert row["title"] == "Shopify setup"


def test_numeric_columns_stay_numbers_a_spreadsheet_can_sum(manager_client, rep):
    DealFactory(rep=rep, amount=Decimal("1250.00"))
    (row,) = _export(manager_client)
    assert [row[c] for c in ("amount", "cleared", "outstanding")] == ["1250.00", "0.00", "1250.00"]
    assert row["age_days"] == "0" and row["deal_id"].isdigit()


# --- import ---------------------------------------------------------------------


def _day(offset: int) -> str:
    return (timezone.localdate() + datetime.timedelta(days=offset)).isoformat()


HEADER = (
    "customer,company,phone,title,amount,payment_option,expected_delivery_date,"
    "next_step,next_step_date,notes"
)


def _row(**cells) -> dict:
    row = {
        "customer": "Zoe Laurent",
        "company": "Laurent Florist",
        "phone": "+1 555 0111",
        "title": "Shopify setup",
        "amount": "950.00",
        "payment_option": "upfront",
        "expected_delivery_date": _day(10),
        "next_step": "Call",
        "next_step_date": _day(2),
        "notes": "",
    }
    row.update(cells)
    return row


def _csv(*rows: dict) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER.split(","))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize("value", FORMULAS)
@pytest.mark.parametrize("column", ["customer", "company", "title", "next_step", "notes"])
def test_an_import_cell_a_spreadsheet_would_run_is_refused_on_its_row(rep_client, column, value):
    text = _csv(_row(), _row(**{column: value}))
    response = rep_client.post("/deals/import/", {"csv_text": text, "confirm": "1"})
    assert response.status_code == 422
    assert f"{column}: starts with" in response.text
    assert "spreadsheet" in response.text
    assert not Deal.objects.exists()


def test_a_phone_number_with_a_leading_plus_is_imported(rep_client):
    text = _csv(_row(phone="+44 20 7946 0018"))
    assert rep_client.post("/deals/import/", {"csv_text": text, "confirm": "1"}).status_code == 302
    assert Deal.objects.get().customer.phone == "+44 20 7946 0018"


def test_a_phone_cell_that_is_a_formula_is_refused(rep_client):
    text = _csv(_row(phone="+1+cmd|' /C calc'!A0 555 0111"))
    response = rep_client.post("/deals/import/", {"csv_text": text, "confirm": "1"})
    assert response.status_code == 422
    assert "phone: starts with" in response.text


@pytest.mark.parametrize("length", [5_001, 131_073, 600_000])
@pytest.mark.parametrize("column", ["notes", "title"])
def test_an_over_long_import_cell_gets_a_message_on_its_row(rep_client, column, length):
    text = _csv(_row(), _row(**{column: "x" * length}))
    response = rep_client.post("/deals/import/", {"csv_text": text, "confirm": "1"})
    assert response.status_code == 422
    assert f"{column}: {length:,} characters" in response.text
    assert "x" * 1000 not in response.text  # the page does not echo the whole cell back
    assert not Deal.objects.exists()


def test_cell_problem_names_what_is_wrong():
    assert cell_problem("phone", "+1 555 0111") is None
    assert "starts with" in cell_problem("customer", "=1+1")
    assert "characters" in cell_problem("notes", "x" * 10_000)
    assert cell_problem("amount", "-5", text=False) is None  # a number: the amount's rule decides
    assert "characters" in cell_problem("amount", "1" * 10_000, text=False)


def test_a_manager_importing_deals_for_a_rep_who_left_is_told_on_the_row(
    manager_client, manager, rep
):
    rep.is_active = False
    rep.save(update_fields=["is_active"])
    fields = HEADER.split(",") + ["rep"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    writer.writerow(_row(rep=rep.username))
    response = manager_client.post("/deals/import/", {"csv_text": out.getvalue(), "confirm": "1"})
    assert response.status_code == 422
    assert "has left" in response.text
    assert not Deal.objects.exists()
