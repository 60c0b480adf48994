"""The rules read from billing: payment bounced, payment due and the overdue
ladder (invoices and instalments), invoice cut-off."""

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    CharField,
    DecimalField,
    Exists,
    F,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat

from billing.models import Instalment, Invoice, Payment, PaymentEvent, PaymentStatus
from billing.policy import next_cutoff
from pipeline.models import Deal
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from reminders.models import Reminder, ReminderKind
from reminders.rules.base import (
    DEAL_ROW,
    MANAGER,
    REP,
    Gone,
    Rule,
    Window,
    day_text,
    deals_for_scan,
    morning_of,
    setting_days,
    without_reminder,
)

# --- billing: payment bounced, payment due and the overdue ladder ------------------
# Read from billing's ledger (PaymentEvent, Invoice, Instalment).


def _money(amount) -> str:
    return f"{settings.CURRENCY_SYMBOL}{amount:,.2f}"


def _bounced_rule(owner: str) -> Rule:
    suffix = "rep" if owner == REP else "manager"

    def find(window: Window, deal_ids: list[int] | None) -> QuerySet:
        events = PaymentEvent.objects.order_by().filter(
            to_status__in=[PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK],
            at__gt=window.since,
            at__lte=window.horizon,
        )
        if deal_ids is not None:
            events = events.filter(payment__deal_id__in=deal_ids)
        occ = Concat(
            Value("p"),
            Cast("payment_id", CharField()),
            Value(f"/{suffix}"),
            output_field=CharField(),
        )
        return without_reminder(
            events.annotate(occ=occ), ReminderKind.PAYMENT_BOUNCED, "payment__deal_id"
        ).values(
            "at",
            "to_status",
            "occ",
            amount=F("payment__amount"),
            deal_pk=F("payment__deal_id"),
            rep_pk=F("payment__deal__rep_id"),
            manager_pk=F("payment__deal__rep__manager_id"),
            tz=F("payment__deal__rep__time_zone"),
        )

    return Rule(
        kind=ReminderKind.PAYMENT_BOUNCED,
        owner=owner,
        find=find,
        due=lambda row: row["at"],
        why=lambda row: (
            f"A payment of {_money(row['amount'])} "
            f"{'was charged back' if row['to_status'] == 'charged_back' else 'bounced'} "
            f"on {day_text(row['at'])}: the deal is not paid — ask for the money again."
        ),
    )


@dataclass(frozen=True)
class Owed:
    """Something billed with a due date, chased on its own: an invoice or an instalment.

    Its reminders' occurrence is ``<prefix><id><rung>`` (``i12+7``, ``n3``),
    so invoices and instalments share the payment kinds without colliding.
    """

    model: type[Model]  # billing's Invoice or Instalment
    payment_field: str  # the Payment foreign key that pays it
    deal: str  # the path from it to its deal
    prefix: str
    noun: str
    label_field: str  # "number" or "sequence"

    def unpaid(self, deal_ids: list[int] | None) -> QuerySet:
        """Those not void whose cleared payments do not cover them."""
        cleared = Coalesce(
            Subquery(
                Payment.objects.filter(
                    **{self.payment_field: OuterRef("pk")}, status=PaymentStatus.CLEARED
                )
                .order_by()
                .values(self.payment_field)
                .annotate(total=Sum("amount"))
                .values("total")
            ),
            Value(Decimal("0.00")),
            output_field=DecimalField(max_digits=14, decimal_places=2),
        )
        rows = self.model.objects.order_by()
        if self.model is Invoice:
            rows = rows.filter(voided_at__isnull=True)
        rows = rows.annotate(cleared=cleared).filter(cleared__lt=F("amount"))
        return rows if deal_ids is None else rows.filter(**{f"{self.deal}_id__in": deal_ids})

    def occ(self, rung: str):
        return Concat(
            Value(self.prefix), Cast("id", CharField()), Value(rung), output_field=CharField()
        )

    def row(self) -> dict:
        return {
            "deal_pk": F(f"{self.deal}_id"),
            "rep_pk": F(f"{self.deal}__rep_id"),
            "manager_pk": F(f"{self.deal}__rep__manager_id"),
            "tz": F(f"{self.deal}__rep__time_zone"),
        }

    def name(self, row: dict) -> str:
        if self.model is Invoice:
            return f"Invoice #{row['label']}"
        return f"Instalment {row['label']} of the payment plan"

    def paid(self, rung: str) -> Callable[[], Q]:
        def when() -> Q:
            unpaid = (
                self.unpaid(None)
                .filter(**{f"{self.deal}_id": OuterRef("deal_id")})
                .annotate(occ=self.occ(rung))
                .filter(occ=OuterRef("occurrence"))
            )
            # Only this rung's reminders of this kind of debt: the other rungs
            # and the other debts share the reminder kind.
            return Q(occurrence__startswith=self.prefix, occurrence__endswith=rung) & ~Exists(
                unpaid
            )

        return when


INVOICE = Owed(Invoice, "invoice", "deal", "i", "invoice", "number")
INSTALMENT = Owed(Instalment, "instalment", "plan__deal", "n", "instalment", "sequence")


def _payment_rule(kind: str, days: int, owner: str, owed: Owed = INVOICE) -> Rule:
    """Payment due (``days`` = 0) or a rung of the overdue ladder (+``days``)."""
    rung = "" if days == 0 else f"+{days}" + ("/manager" if owner == MANAGER else "")
    lag = timedelta(days=days)

    def find(window: Window, deal_ids: list[int] | None) -> QuerySet:
        rows = owed.unpaid(deal_ids).filter(
            window.mornings("due_date", lag=lag, rep=f"{owed.deal}__rep")
        )
        return without_reminder(rows.annotate(occ=owed.occ(rung)), kind, f"{owed.deal}_id").values(
            "due_date", "amount", "cleared", "occ", label=F(owed.label_field), **owed.row()
        )

    def why(row: dict) -> str:
        left = _money(row["amount"] - row["cleared"])
        if days == 0:
            return (
                f"{owed.name(row)} ({left}) is due {day_text(row['due_date'])}: ask for the money."
            )
        return (
            f"{owed.name(row)} ({left}) was due {day_text(row['due_date'])}, "
            f"{days} days ago: ask for the money — avoiding it does not work."
        )

    return Rule(
        kind=kind,
        owner=owner,
        find=find,
        due=lambda row: morning_of(row["due_date"] + lag, row["tz"]),
        why=why,
        gone=(Gone(owed.paid(rung), f"Paid: cleared money covers the {owed.noun}."),),
        ends_with_deal=False,  # paid is how it ends; a lost deal's debt is still owed
    )


def _ladder() -> list[int]:
    return sorted({int(day) for day in settings.REMINDERS_PAYMENT_LADDER_DAYS if int(day) > 0})


def _invoiced():
    return Coalesce(
        Subquery(
            Invoice.objects.filter(deal=OuterRef("pk"), voided_at__isnull=True)
            .order_by()
            .values("deal")
            .annotate(total=Sum("amount"))
            .values("total")
        ),
        Value(Decimal("0.00")),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )


def _find_invoice_cutoff(window: Window, deal_ids: list[int] | None) -> list[dict]:
    """Billed deals not fully invoiced whose customer's cut-off is coming up.

    The cut-off is a day of the month (``Customer.accounting_cutoff_day``), so
    the cut-off dates are worked out here (``billing.policy.next_cutoff``) and
    the occurrence is the cut-off date: one reminder per deal and cut-off.
    """
    lead = setting_days("REMINDERS_INVOICE_CUTOFF_DAYS")
    first, last = window.dates(lag=-lead)
    if window.lookback is not None:  # the quick scan: only cut-offs whose morning just came
        cutoffs = window.morning_days(lag=-lead)
        if not cutoffs:
            return []
        first, last = min(cutoffs), max(cutoffs)
    days: set[int] = set()
    day = first
    while day <= last:
        days.add(day.day)
        if day.day == calendar.monthrange(day.year, day.month)[1]:
            days.update(range(day.day + 1, 32))  # a cut-off past a short month's end
        day += timedelta(days=1)
    rows = (
        deals_for_scan(deal_ids)
        .filter(
            payment_option=PaymentOption.INVOICE,
            stage__in=[Stage.AUDIT_CONFIRMED, Stage.DELIVERED],
            customer__accounting_cutoff_day__in=sorted(days),
        )
        .annotate(invoiced=_invoiced())
        .filter(invoiced__lt=F("amount"))
        .values("amount", "invoiced", cutoff_day=F("customer__accounting_cutoff_day"), **DEAL_ROW)
    )
    found = []
    for row in rows:
        cutoff = next_cutoff(row["cutoff_day"], first)
        if cutoff is None or cutoff > last:
            continue
        found.append({**row, "cutoff": cutoff, "occ": cutoff.isoformat()})
    if not found:
        return []
    existing = set(
        Reminder.objects.filter(
            kind=ReminderKind.INVOICE_CUTOFF, deal_id__in=[row["deal_pk"] for row in found]
        ).values_list("deal_id", "occurrence")
    )
    return [row for row in found if (row["deal_pk"], row["occ"]) not in existing]


def _invoice_sent():
    not_invoiced = (
        Deal.objects.filter(pk=OuterRef("deal_id"))
        .annotate(invoiced=_invoiced())
        .filter(invoiced__lt=F("amount"))
    )
    return ~Exists(not_invoiced)


INVOICE_CUTOFF = Rule(
    kind=ReminderKind.INVOICE_CUTOFF,
    owner=REP,
    find=_find_invoice_cutoff,
    due=lambda row: morning_of(
        row["cutoff"] - setting_days("REMINDERS_INVOICE_CUTOFF_DAYS"), row["tz"]
    ),
    why=lambda row: (
        f"The customer's accounting cut-off is {day_text(row['cutoff'])}: send the invoice "
        f"({_money(row['amount'] - row['invoiced'])} not invoiced) so it makes their payment run."
    ),
    gone=(Gone(_invoice_sent, "The invoice was sent."),),
    not_due_before_created=True,
)


def billing_rules() -> tuple[Rule, ...]:
    ladder = _ladder()
    rules = [
        INVOICE_CUTOFF,
        _bounced_rule(REP),
        _bounced_rule(MANAGER),
        _payment_rule(ReminderKind.PAYMENT_DUE, 0, REP),
    ]
    rules += [_payment_rule(ReminderKind.PAYMENT_OVERDUE, days, REP) for days in ladder]
    if ladder:  # past the last rung, the manager hears about it too
        rules.append(_payment_rule(ReminderKind.PAYMENT_OVERDUE, ladder[-1], MANAGER))
    # Each instalment of a payment plan is due and chased on its own.
    rules.append(_payment_rule(ReminderKind.PAYMENT_DUE, 0, REP, INSTALMENT))
    rules += [_payment_rule(ReminderKind.PAYMENT_OVERDUE, days, REP, INSTALMENT) for days in ladder]
    if ladder:
        rules.append(_payment_rule(ReminderKind.PAYMENT_OVERDUE, ladder[-1], MANAGER, INSTALMENT))
    return tuple(rules)
