"""The Activity page: every recorded change a manager or an operator may see (issue 20, §2).

Reads the history tables of pipeline and billing (pipeline/history.py), so it
lives here, on top of both. What a person sees follows pipeline.access:

- an operator (superuser): everything;
- a manager: their team's deals, those deals' payments and invoices, the
  customers they may see, and the people of their team (roles, team moves).

Filters: person (who made the change), object type, field, date range. A page
is at most ``PER_PAGE`` changes, newest first, read in a fixed number of
queries whatever the page holds: per type a count and one slice (only the
first ``page × PER_PAGE`` rows of each), then the names the changes mention.
"""

from dataclasses import dataclass
from datetime import date, datetime, time

from django.core.paginator import Paginator
from django.utils import timezone

from billing.models import Invoice, Payment
from pipeline import access
from pipeline.changes import KIND_NAMES, describe
from pipeline.models import Customer, Deal, User

PER_PAGE = 25
TYPES = {"deal": Deal, "customer": Customer, "payment": Payment, "invoice": Invoice, "user": User}


@dataclass(frozen=True)
class ActivityFilters:
    person: int | None = None
    kind: str = ""
    field: str = ""
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_query(cls, params) -> "ActivityFilters":
        person = params.get("person", "")
        kind = params.get("type", "")
        field = params.get("field", "").strip()
        return cls(
            person=int(person) if person.isdigit() and len(person) < 10 else None,
            kind=kind if kind in TYPES else "",
            field=field if field.replace("_", "").isalnum() and len(field) <= 40 else "",
            since=_day(params.get("since", "")),
            until=_day(params.get("until", "")),
        )


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _visible_rows(user, model):
    """The history rows of ``model`` whose object this user may see now."""
    rows = model.history.all()
    if user.is_superuser:
        return rows
    deals = Deal.objects.visible_to(user).values("pk")
    if model is Deal:
        return rows.filter(id__in=deals)
    if model in (Payment, Invoice):
        return rows.filter(deal_id__in=deals)
    if model is Customer:
        return rows.filter(id__in=Customer.objects.visible_to(user).values("pk"))
    if model is User:
        return rows.filter(id__in=access.team_members(user).values("pk"))
    return rows.none()


def _filtered(user, model, filters: ActivityFilters):
    rows = _visible_rows(user, model).exclude(history_type="~", history_fields="")
    if filters.person is not None:
        rows = rows.filter(history_user_id=filters.person)
    if filters.field:
        rows = rows.filter(history_fields__contains=f",{filters.field},")
    zone = timezone.get_current_timezone()
    if filters.since:
        rows = rows.filter(history_date__gte=datetime.combine(filters.since, time.min, zone))
    if filters.until:
        rows = rows.filter(history_date__lt=datetime.combine(filters.until, time.max, zone))
    return rows.select_related("history_user").order_by("-history_date", "-history_id")


class _Merged:
    """The changes of several history tables as one sequence for a Paginator."""

    def __init__(self, querysets):
        self.querysets = querysets

    def count(self) -> int:
        return sum(rows.count() for rows in self.querysets)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, window: slice):
        # The newest ``stop`` rows of each table hold the newest ``stop`` of all.
        rows = [row for qs in self.querysets for row in qs[: window.stop]]
        rows.sort(key=lambda row: (row.history_date, row.history_id), reverse=True)
        return describe(rows[window])


def activity_page(user, filters: ActivityFilters, page_number):
    """One page of the changes ``user`` may see, newest first, as ``Change``s."""
    access.require_manager(user, "The Activity page is for managers.")
    models = [TYPES[filters.kind]] if filters.kind else list(TYPES.values())
    page = Paginator(_Merged([_filtered(user, m, filters) for m in models]), PER_PAGE).get_page(
        page_number
    )
    for change in page.object_list:
        if change.kind == "deal":
            change.object_url = f"/deals/{change.object_id}/"
        elif change.kind == "customer" and change.history_type != "-":
            change.object_url = f"/customers/{change.object_id}/"
    return page


def people_to_filter(user):
    """The people whose changes the filter offers: the team, or everyone for an operator."""
    return access.team_members(user).filter(is_active=True).order_by("first_name", "username")


TYPE_CHOICES = [(kind, KIND_NAMES[kind]) for kind in TYPES]
