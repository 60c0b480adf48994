"""Issue 14 (emails to customers): the rule read from billing's ``CustomerEmail`` rows.

For the integrator to port to the new engine, exactly:

- kind: ``email_bounced`` (``ReminderKind.EMAIL_BOUNCED``, "Customer email bounced").
- owner: the deal's rep (REP).
- when created: a ``billing.CustomerEmail`` row reached state ``bounced``
  (the mail server refused the customer's address with a 5xx on RCPT, see
  ``billing.mail._bounced``), ``settled_at`` inside the scan's window.
  Occurrence: ``e<email id>`` — one reminder per bounced email.
- due time: at once, ``settled_at`` (when the bounce was recorded).
- why: "An email to <address> (<kind>, invoice <number>) bounced: the address
  is refused for good. Correct the customer's billing email, then send it again."
- gone: the customer's ``billing_email_bounced_at`` is empty again (someone
  entered an address on the customer's page: ``CustomerForm.save`` clears it),
  resolved with "A new billing address was entered."; or the deal closed
  (paid, lost, written off: the usual ``DEAL_CLOSED``).
"""

from django.db.models import CharField, F, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat

from billing.models import CustomerEmail, EmailState
from reminders.models import ReminderKind
from reminders.rules.base import REP, Gone, Rule, Window, without_reminder


def _find_bounced(window: Window, deal_ids: list[int] | None) -> QuerySet:
    rows = CustomerEmail.objects.order_by().filter(
        state=EmailState.BOUNCED,
        deal__isnull=False,
        settled_at__gt=window.since,
        settled_at__lte=window.horizon,
    )
    if deal_ids is not None:
        rows = rows.filter(deal_id__in=deal_ids)
    occ = Concat(Value("e"), Cast("id", CharField()), output_field=CharField())
    return without_reminder(rows.annotate(occ=occ), ReminderKind.EMAIL_BOUNCED, "deal_id").values(
        "occ",
        "settled_at",
        "to_address",
        "kind",
        number=F("invoice__number"),
        deal_pk=F("deal_id"),
        rep_pk=F("deal__rep_id"),
        manager_pk=F("deal__rep__manager_id"),
        tz=F("deal__rep__time_zone"),
    )


def _why(row: dict) -> str:
    what = "the invoice" if row["kind"] == "invoice" else "a payment reminder"
    number = f", invoice #{row['number']}" if row["number"] else ""
    return (
        f"An email to {row['to_address']} ({what}{number}) bounced: the address is refused "
        "for good. Correct the customer's billing email, then send it again."
    )


EMAIL_BOUNCED = Rule(
    kind=ReminderKind.EMAIL_BOUNCED,
    owner=REP,
    find=_find_bounced,
    due=lambda row: row["settled_at"],
    why=_why,
    gone=(
        Gone(
            lambda: Q(deal__customer__billing_email_bounced_at__isnull=True),
            "A new billing address was entered.",
        ),
    ),
)
