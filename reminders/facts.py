"""Load what the rules decide from, for a batch of deals at once.

One query reads the deals (with their rep's manager and time zone, their
customer's cut-off day and their latest touch), one their reminders, and
each app's loader (``reminders.rules.LOADERS``) its own part: a fixed number
of queries whether the batch holds one deal or five hundred.
"""

from django.db.models import F, OuterRef, Subquery

from pipeline.compiled import Compiled, InBatch
from pipeline.models import Deal, Touch
from reminders.models import Reminder
from reminders.rules import LOADERS
from reminders.rules.base import Facts, Known

DEAL_FIELDS = (
    "pk",
    "stage",
    "amount",
    "payment_option",
    "deposit_required",
    "promised_at",
    "expected_delivery_date",
    "delivered_at",
    "next_step",
    "next_step_date",
    "audit_flag",
    "audit_flag_at",
    "rep_id",
)
RELATED_FIELDS = {
    "manager_id": F("rep__manager_id"),
    "tz": F("rep__time_zone"),
    "cutoff_day": F("customer__accounting_cutoff_day"),
    "billing_email_bounced_at": F("customer__billing_email_bounced_at"),
    "billing_email": F("customer__billing_email"),
    "customer_email": F("customer__email"),
}


def _latest_touch(field_name: str) -> Subquery:
    return Subquery(
        Touch.objects.filter(deal_id=OuterRef("pk"))
        .order_by("-happened_at", "-id")
        .values(field_name)[:1]
    )


_FIELDS = (*DEAL_FIELDS, "last_touch_at", "last_touch_author_id", *RELATED_FIELDS)
# Each query compiled once (``pipeline.compiled``): the batch's ids are its one
# parameter, so a batch costs the queries' SQL, not building them again.
_DEALS = Compiled(
    lambda: (
        Deal.objects.order_by()
        .filter(InBatch(F("pk"), "ids"))
        .annotate(
            last_touch_at=_latest_touch("happened_at"),
            last_touch_author_id=_latest_touch("author_id"),
            **RELATED_FIELDS,
        )
        .values_list(*_FIELDS)
    )
)
_REMINDERS = Compiled(
    lambda: Reminder.objects.order_by().filter(InBatch(F("deal_id"), "ids")).values_list(
        "deal_id", "id", "kind", "occurrence", "owner_id", "queue", "state", "due_at",
        "snoozed_until",
    )
)  # fmt: skip


def load_facts(deal_ids: list[int]) -> dict[int, Facts]:
    """The facts of these deals (those that still exist), keyed by deal id."""
    rows = _DEALS.rows(ids=deal_ids)
    facts = {row[0]: Facts(**dict(zip(_FIELDS, row, strict=True))) for row in rows}
    if not facts:
        return facts
    for deal_id, *fields in _REMINDERS.rows(ids=list(facts)):
        facts[deal_id].reminders.append(Known(*fields))
    for load in LOADERS:
        load(facts)
    return facts
