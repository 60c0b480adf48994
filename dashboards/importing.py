"""Importing deals from a spreadsheet: preview every row, then all or nothing.

A rep or manager moving from a spreadsheet uploads a CSV. Every row is checked
with the same rules as the deal form (terms policy, amounts, dates, card
numbers masked); nothing is saved until every row is good, and then every
row is saved in one transaction.
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, time

from django import forms
from django.db import transaction
from django.utils import timezone

from dashboards.spreadsheets import MAX_CELL_CHARS, cell_problem
from pipeline import access, services
from pipeline.forms import AmountField
from pipeline.models import Customer, Deal, User
from pipeline.sameness import Matches, customer_matches, typed_floor
from pipeline.selectors import customer_terms
from pipeline.terms import PaymentOption, Standing, terms_for
from pipeline.text import single_line

REQUIRED_COLUMNS = (
    "customer",
    "phone",
    "title",
    "amount",
    "payment_option",
    "expected_delivery_date",
    "next_step",
    "next_step_date",
)
OPTIONAL_COLUMNS = ("company", "email", "promised_on", "notes", "rep")
# Read as text, so a formula in them is refused (dashboards.spreadsheets).
TEXT_COLUMNS = ("customer", "company", "phone", "title", "next_step", "notes", "email", "rep")
MAX_ROWS = 5000
MAX_BYTES = 2 * 1024 * 1024
# The csv module refuses a field over 131,072 characters with an error for the
# whole file. The file is capped at MAX_BYTES anyway, so let every cell be read
# and get its own message on its row (cell_problem's MAX_CELL_CHARS).
csv.field_size_limit(max(csv.field_size_limit(), MAX_BYTES))


class CsvImportError(Exception):
    """The file as a whole cannot be imported; the message says why."""

    pass


class DealRowForm(forms.Form):
    customer = forms.CharField(max_length=200)
    company = forms.CharField(max_length=200, required=False)
    phone = forms.CharField(max_length=40)
    email = forms.EmailField(required=False)
    title = forms.CharField(max_length=200)
    amount = AmountField()
    payment_option = forms.ChoiceField(choices=PaymentOption.choices)
    expected_delivery_date = forms.DateField()
    next_step = forms.CharField(max_length=300)
    next_step_date = forms.DateField()
    promised_on = forms.DateField(required=False)
    notes = forms.CharField(required=False)
    rep = forms.CharField(required=False)

    def __init__(self, *args, user: User, reps: dict[str, User], **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.reps = user, reps

    def clean_customer(self):
        # A quoted cell may hold a line break; the name ends up in email headers.
        return single_line(self.cleaned_data.get("customer"))

    def clean_company(self):
        return single_line(self.cleaned_data.get("company"))

    def clean_promised_on(self):
        value = self.cleaned_data.get("promised_on")
        if value and value > timezone.localdate():
            raise forms.ValidationError("A promise can't be in the future.")
        return value

    def clean_rep(self):
        username = self.cleaned_data.get("rep", "").strip()
        if not username:
            return self.user
        rep = self.reps.get(username.lower())
        if rep is None:
            raise forms.ValidationError(f"“{username}” is not a rep on your team.")
        if not rep.is_active:  # nothing new is logged in the name of someone who left
            raise forms.ValidationError(
                f"“{username}” has left: import their deals as their successor."
            )
        return rep


@dataclass
class ImportRow:
    line: int
    values: dict
    errors: list[str] = field(default_factory=list)
    cleaned: dict = field(default_factory=dict)
    customer: Customer | None = None
    # A new customer's matches among the existing ones (pipeline.sameness).
    matches: Matches | None = None


def _team_reps(user: User) -> dict[str, User]:
    """Whose deals a user may import: a rep's own; a manager's team's (pipeline.access)."""
    reps = access.team_members(user) if access.can_manage(user) else [user]
    return {rep.username.lower(): rep for rep in reps}


def read_rows(user: User, text: str) -> list[ImportRow]:
    """Every row of the CSV ``text`` checked; raises ImportError if the file is unusable."""
    if len(text.encode()) > MAX_BYTES:
        raise CsvImportError("The file is larger than 2 MB: split it into smaller files.")
    reader = csv.DictReader(io.StringIO(text))
    headers = [name.strip().lower() for name in (reader.fieldnames or [])]
    missing = [name for name in REQUIRED_COLUMNS if name not in headers]
    if missing:
        raise CsvImportError(
            "The first line must name the columns; missing: " + ", ".join(missing) + "."
        )
    reader.fieldnames = headers
    lines = []
    try:
        for number, raw in enumerate(reader, start=2):
            if len(lines) >= MAX_ROWS:
                raise CsvImportError(f"At most {MAX_ROWS} rows can be imported at once.")
            values = {key: (value or "").strip() for key, value in raw.items() if key}
            if any(values.values()):
                lines.append((number, values))
    except csv.Error as exc:
        raise CsvImportError(f"Line {reader.line_num} is not valid CSV ({exc}).") from None
    if not lines:
        raise CsvImportError("The file has no rows under its header line.")
    reps = _team_reps(user)
    customers = _named_customers(user, {values.get("phone", "") for _, values in lines})
    return [
        _check_row(number, values, user=user, reps=reps, customers=customers)
        for number, values in lines
    ]


def _named_customers(user: User, phones: set[str]) -> dict[tuple[str, str], Customer]:
    """The customers ``user`` sees that a row may name again, by (name in any case,
    phone): only those with a phone of the file, not every customer of the team."""
    found = Customer.objects.visible_to(user).filter(phone__in=sorted(phones - {""}))
    return {(c.name.strip().lower(), c.phone.strip()): c for c in found}


def _check_row(number: int, values: dict, *, user, reps, customers) -> ImportRow:
    """One row checked: its cells (dashboards.spreadsheets), then the deal form's rules."""
    row = ImportRow(number, values)
    refused = {}
    for name, value in values.items():
        if problem := cell_problem(name, value, text=name in TEXT_COLUMNS):
            refused[name] = problem
            row.errors.append(f"{name}: {problem}")
            # The preview shows the row: not a whole over-long cell.
            values[name] = value[:80] + "…" if len(value) > MAX_CELL_CHARS else value
    form = DealRowForm(values, user=user, reps=reps)
    if form.is_valid() and not refused:
        row.cleaned = form.cleaned_data
        row.customer = customers.get((row.cleaned["customer"].lower(), row.cleaned["phone"]))
        terms = customer_terms(row.customer) if row.customer else customer_terms(None)
        if row.customer is None:
            # A new customer matching an existing one starts no better than it.
            typed = {
                "name": row.cleaned["customer"],
                "company": row.cleaned["company"],
                "email": row.cleaned["email"],
                "phone": row.cleaned["phone"],
            }
            row.matches = customer_matches(user, **typed)
            if floor := typed_floor(**typed):
                terms = terms_for(Standing(floor[0]), floor[1])
        if not terms.allows(row.cleaned["payment_option"]):
            row.errors.append(f"payment_option: {terms.summary}")
    else:
        for name, errors in form.errors.items():
            if name not in refused:
                row.errors.extend(f"{name}: {error}" for error in errors)
    return row


@transaction.atomic
def import_deals(*, user: User, rows: list[ImportRow]) -> list[Deal]:
    """Create every row's deal (and new customers) in one transaction, or none."""
    if any(row.errors for row in rows):
        raise CsvImportError("Fix the rows with errors first: nothing was imported.")
    created_customers: dict[tuple[str, str], Customer] = {}
    deals = []
    for row in rows:
        data = row.cleaned
        customer = row.customer
        key = (data["customer"].lower(), data["phone"])
        if customer is None:
            customer = created_customers.get(key)
        if customer is None:
            customer = services.customer_add(
                name=data["customer"],
                company=data["company"],
                phone=data["phone"],
                email=data["email"],
                owner=data["rep"],
            )
            created_customers[key] = customer
        promised_at = None
        if data["promised_on"]:
            promised_at = timezone.make_aware(datetime.combine(data["promised_on"], time(12)))
        deals.append(
            services.deal_promise(
                rep=data["rep"],
                customer=customer,
                title=data["title"],
                amount=data["amount"],
                payment_option=data["payment_option"],
                expected_delivery_date=data["expected_delivery_date"],
                next_step=data["next_step"],
                next_step_date=data["next_step_date"],
                notes=data["notes"],
                promised_at=promised_at,
            )
        )
    return deals
