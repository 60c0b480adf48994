"""Where events come from: the append-only rows each change writes.

The ONE module of hooks that names billing's, receivables', audits' and reminders' models
(and the calendar's reads of them, ``calendar_*`` below): when a model
moves app, only the imports here change.

- Written with ``save()``: ``post_save`` receivers, connected in
  ``HooksConfig.ready``, run inside the writer's transaction, so the event
  commits with the change or not at all: StageEvent (deal.promised,
  deal.stage_changed, deal.lost), PaymentEvent (payment.recorded, .cleared,
  .bounced), Invoice (invoice.issued), CallAttempt (audit.outcome_recorded).
- Written with ``bulk_create``, which sends no signal: a customer's answer
  (CustomerResponse) is followed in the same transaction by the Touch the
  answer records on its deal (``receivables.links``), whose ``post_save`` picks
  up the answers; the scan catches any other writer.
- Changed by time alone, or by bulk updates (an invoice passing its due
  date, the reminders' scan marking reminders due): ``hooks_scan``, run by
  beat, looks at a bounded window; the event's unique ``key`` makes a
  second look harmless.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone

from audits.models import Audit, CallAttempt
from billing.models import Invoice, Payment, PaymentEvent, PaymentStatus
from hooks import outbox
from hooks.models import Event, EventType
from pipeline.models import Deal, StageEvent, Touch, TouchKind
from pipeline.stages import Stage
from receivables.models import CustomerResponse, ResponseKind
from reminders.models import Reminder, ReminderState

LOOKBACK = timedelta(days=1)


def _deal(deal_id: int) -> Deal:
    return Deal.objects.select_related("customer", "rep").get(pk=deal_id)


def _emit(
    event_type: str, key: str, deal_id: int, build, at: datetime | None = None, wanted=None
) -> None:
    """Record ``event_type`` if anyone wants it; ``build(deal)`` gives (object data, chat what).

    ``wanted``: the live subscriptions wanting it, when the caller (a scan) has them.
    """
    wanted = outbox.wanting(event_type) if wanted is None else wanted
    if not wanted:
        return
    targets = outbox.in_scope(wanted, deal_id)
    if not targets:
        return
    deal = _deal(deal_id)
    name, url, fields, what = build(deal)
    data = {"deal_id": deal.pk, "url": url, "deal": outbox.deal_data(deal)}
    if name:
        data[name] = fields
    outbox.event_record(
        event_type=event_type,
        key=key,
        deal=deal,
        data=data,
        chat=outbox.chat_parts(deal, what),
        occurred_at=at,
        subscriptions=targets,
    )


def _stage_label(stage: str) -> str:
    return Stage(stage).label if stage in Stage.values else stage


# --- the deal's stage events ---------------------------------------------------------


def on_stage_event(sender, instance: StageEvent, created: bool, raw=False, **kwargs) -> None:
    if raw or not created:
        return
    deal_url = outbox.api_url("deals", instance.deal_id)
    fields = {
        "from": instance.from_stage or None,
        "to": instance.to_stage,
        "reason": instance.reason,
        "actor": instance.actor.get_username() if instance.actor_id else None,
        "at": instance.at.isoformat(),
    }
    if not instance.from_stage:
        _emit(
            EventType.DEAL_PROMISED,
            f"deal.promised:stageevent:{instance.pk}",
            instance.deal_id,
            lambda deal: (
                "stage_change",
                deal_url,
                fields,
                f"promised: {outbox.money(deal.amount)}",
            ),
            instance.at,
        )
        return
    moved = f"moved from {_stage_label(instance.from_stage)} to {_stage_label(instance.to_stage)}"
    _emit(
        EventType.DEAL_STAGE_CHANGED,
        f"deal.stage_changed:stageevent:{instance.pk}",
        instance.deal_id,
        lambda deal: ("stage_change", deal_url, fields, moved),
        instance.at,
    )
    if instance.to_stage == Stage.LOST:
        _emit(
            EventType.DEAL_LOST,
            f"deal.lost:stageevent:{instance.pk}",
            instance.deal_id,
            lambda deal: (
                "stage_change",
                deal_url,
                {**fields, "lost_reason": deal.lost_reason},
                f"was lost: {deal.get_lost_reason_display() or 'no reason given'}",
            ),
            instance.at,
        )


# --- money -------------------------------------------------------------------------------

_PAYMENT_EVENTS = {
    PaymentStatus.PENDING: (EventType.PAYMENT_RECORDED, "payment recorded"),
    PaymentStatus.CLEARED: (EventType.PAYMENT_CLEARED, "payment cleared"),
    PaymentStatus.BOUNCED: (EventType.PAYMENT_BOUNCED, "payment bounced"),
}


def payment_data(payment: Payment) -> dict:
    return {
        "id": payment.pk,
        "url": outbox.api_url("payments", payment.pk),
        "kind": payment.kind,
        "method": payment.method,
        "amount": str(payment.amount),
        "currency": settings.CURRENCY,
        "status": payment.status,
        "reference": payment.reference,
        "invoice_id": payment.invoice_id,
        "recorded_at": payment.recorded_at.isoformat(),
    }


def on_payment_event(sender, instance: PaymentEvent, created: bool, raw=False, **kwargs) -> None:
    if raw or not created or instance.to_status not in _PAYMENT_EVENTS:
        return
    if instance.to_status == PaymentStatus.PENDING and instance.from_status:
        return
    event_type, said = _PAYMENT_EVENTS[instance.to_status]
    wanted = outbox.wanting(event_type)
    if not wanted:
        return
    payment = Payment.objects.get(pk=instance.payment_id)

    def build(deal: Deal):
        fields = {**payment_data(payment), "reason": instance.reason, "source": instance.source}
        url = fields["url"]
        return "payment", url, fields, f"{said}: {outbox.money(payment.amount)}"

    _emit(
        event_type, f"{event_type}:paymentevent:{instance.pk}", payment.deal_id, build, instance.at
    )


def invoice_data(invoice: Invoice) -> dict:
    return {
        "id": invoice.pk,
        "url": outbox.api_url("invoices", invoice.pk),
        "number": invoice.display_number,
        "amount": str(invoice.amount),
        "currency": settings.CURRENCY,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
    }


def on_invoice(sender, instance: Invoice, created: bool, raw=False, **kwargs) -> None:
    if raw or not created:
        return
    fields = invoice_data(instance)
    what = (
        f"invoiced: {instance.display_number} for {outbox.money(instance.amount)}, "
        f"due {instance.due_date:%-d %b %Y}"
    )
    _emit(
        EventType.INVOICE_ISSUED,
        f"invoice.issued:invoice:{instance.pk}",
        instance.deal_id,
        lambda deal: ("invoice", fields["url"], fields, what),
        instance.issued_at,
    )


# --- audits ------------------------------------------------------------------------------


def on_call_attempt(sender, instance: CallAttempt, created: bool, raw=False, **kwargs) -> None:
    if raw or not created:
        return
    wanted = outbox.wanting(EventType.AUDIT_OUTCOME_RECORDED)
    if not wanted:
        return
    deal_id = Audit.objects.values_list("deal_id", flat=True).get(pk=instance.audit_id)
    fields = {
        "audit_id": instance.audit_id,
        "url": outbox.api_url("audits", instance.audit_id),
        "outcome": instance.outcome,
        "auditor": instance.auditor.get_username(),
        "callback_at": instance.callback_at.isoformat() if instance.callback_at else None,
        "at": instance.at.isoformat(),
    }
    what = f"audit call: {instance.get_outcome_display().lower()}"
    _emit(
        EventType.AUDIT_OUTCOME_RECORDED,
        f"audit.outcome_recorded:callattempt:{instance.pk}",
        deal_id,
        lambda deal: ("audit", fields["url"], fields, what),
        instance.at,
        wanted=wanted,
    )


# --- the customer's answers ------------------------------------------------------------


def _answer_key(response: CustomerResponse) -> str:
    return f"customer.answered:customerresponse:{response.pk}"


def customer_answered(response: CustomerResponse) -> None:
    invoice = response.invoice
    if response.kind == ResponseKind.PROMISE:
        day = f"{response.promised_for:%-d %b %Y}"
        what = f"customer promises to pay {invoice.display_number} on {day}"
    else:
        what = f"customer says {invoice.display_number} is paid"
    fields = {
        "id": response.pk,
        "kind": response.kind,
        "reference": response.reference,
        "promised_for": response.promised_for.isoformat() if response.promised_for else None,
        "invoice": invoice_data(invoice),
        "at": response.created_at.isoformat(),
    }
    _emit(
        EventType.CUSTOMER_ANSWERED,
        _answer_key(response),
        invoice.deal_id,
        lambda deal: ("answer", fields["invoice"]["url"], fields, what),
        response.created_at,
    )


def on_customer_response(sender, instance, created: bool, raw=False, **kwargs) -> None:
    if not raw and created:
        customer_answered(instance)


def on_touch(sender, instance: Touch, created: bool, raw=False, **kwargs) -> None:
    """A customer's answer is bulk-inserted, then recorded as a touch on its deal:
    the touch's save is when the answers (same transaction) become events."""
    if raw or not created or instance.kind != TouchKind.CUSTOMER_LINK:
        return
    if not outbox.wanting(EventType.CUSTOMER_ANSWERED):
        return
    recent = CustomerResponse.objects.filter(
        invoice__deal_id=instance.deal_id, created_at__gte=timezone.now() - timedelta(minutes=10)
    ).select_related("invoice")
    for response in recent:
        customer_answered(response)


# --- by time: the scan ---------------------------------------------------------------------


def _unseen(keyed: list[tuple[str, object]], wanted, deal_of) -> list[tuple[str, object]]:
    """The (key, row) pairs some subscription may see (one query a subscription) whose
    event is not written yet (one query a thousand): the scan's repeat visits stay cheap."""
    deal_ids = {deal_of(row) for _, row in keyed}
    reachable = outbox.scoped_deal_ids(wanted, deal_ids) if deal_ids else set()
    keyed = [(key, row) for key, row in keyed if deal_of(row) in reachable]
    seen: set[str] = set()
    for start in range(0, len(keyed), 1000):
        keys = [key for key, _ in keyed[start : start + 1000]]
        seen.update(Event.objects.filter(key__in=keys).values_list("key", flat=True))
    return [(key, row) for key, row in keyed if key not in seen]


def _scan_overdue_invoices(today) -> int:
    wanted = outbox.wanting(EventType.INVOICE_OVERDUE)
    if not wanted:
        return 0
    candidates = (
        Invoice.objects.filter(
            voided_at__isnull=True,
            due_date__lt=today,
            due_date__gte=today - timedelta(days=settings.HOOKS_OVERDUE_LOOKBACK_DAYS),
        )
        .with_cleared()  # billing.models.paid_against: the one "money cleared on an invoice"
        .order_by("due_date")
    )
    keyed = [
        (f"invoice.overdue:invoice:{invoice.pk}", invoice)
        for invoice in candidates
        if invoice.is_overdue(today, invoice.cleared)
    ]
    made = 0
    for key, invoice in _unseen(keyed, wanted, lambda row: row.deal_id):
        fields = {**invoice_data(invoice), "days_overdue": (today - invoice.due_date).days}
        what = (
            f"invoice {invoice.display_number} is overdue: {outbox.money(invoice.amount)} "
            f"was due {invoice.due_date:%-d %b %Y}"
        )
        with transaction.atomic():
            _emit(
                EventType.INVOICE_OVERDUE,
                key,
                invoice.deal_id,
                lambda deal, fields=fields, what=what: ("invoice", fields["url"], fields, what),
                wanted=wanted,
            )
        made += 1
    return made


def _scan_due_reminders(now: datetime) -> int:
    wanted = outbox.wanting(EventType.REMINDER_DUE)
    if not wanted:
        return 0
    due = Reminder.objects.filter(state=ReminderState.DUE, updated_at__gte=now - LOOKBACK)
    keyed = [
        (f"reminder.due:reminder:{reminder.pk}:{int(reminder.shown_at.timestamp())}", reminder)
        for reminder in due.select_related("owner").order_by("updated_at")
    ]
    made = 0
    for key, reminder in _unseen(keyed, wanted, lambda row: row.deal_id):
        shown = reminder.shown_at
        fields = {
            "id": reminder.pk,
            "url": outbox.api_url("reminders", reminder.pk),
            "kind": reminder.kind,
            "why": reminder.why,
            "due_at": shown.isoformat(),
            "owner": reminder.owner.get_username() if reminder.owner_id else None,
            "queue": reminder.queue or None,
        }
        what = f"reminder due: {reminder.get_kind_display()} ({reminder.why})"
        with transaction.atomic():
            _emit(
                EventType.REMINDER_DUE,
                key,
                reminder.deal_id,
                lambda deal, fields=fields, what=what: ("reminder", fields["url"], fields, what),
                wanted=wanted,
            )
        made += 1
    return made


def _scan_answers(now: datetime) -> int:
    wanted = outbox.wanting(EventType.CUSTOMER_ANSWERED)
    if not wanted:
        return 0
    answers = CustomerResponse.objects.filter(created_at__gte=now - LOOKBACK)
    keyed = [(_answer_key(r), r) for r in answers.select_related("invoice")]
    unseen = _unseen(keyed, wanted, lambda row: row.invoice.deal_id)
    for _, response in unseen:
        with transaction.atomic():
            customer_answered(response)
    return len(unseen)


def hooks_scan(*, now: datetime | None = None) -> dict:
    """What time alone (or a bulk write, which sends no signal) made happen.

    Safe to run twice at once or again after a gap: each event's key is
    unique, so a source seen again makes nothing new.
    """
    now = now or timezone.now()
    return {
        "invoices overdue": _scan_overdue_invoices(timezone.localdate(now)),
        "reminders due": _scan_due_reminders(now),
        "answers": _scan_answers(now),
    }


# --- the calendar feed's reads of billing -------------------------------------------------


def calendar_invoices_due(deals, start, end) -> list[Invoice]:
    """Open invoices of these deals falling due between ``start`` and ``end`` (dates)."""
    return list(
        Invoice.objects.filter(
            deal__in=deals, voided_at__isnull=True, due_date__gte=start, due_date__lte=end
        )
        .with_cleared()  # billing.models.paid_against: the one "money cleared on an invoice"
        .select_related("deal__customer")
        .order_by("due_date")
    )


def calendar_promised_days(deals, start, end) -> list[CustomerResponse]:
    """The days customers promised to pay on, for these deals' invoices."""
    return list(
        CustomerResponse.objects.filter(
            invoice__deal__in=deals,
            kind=ResponseKind.PROMISE,
            promised_for__gte=start,
            promised_for__lte=end,
        )
        .select_related("invoice__deal__customer")
        .order_by("promised_for")
    )


def connect() -> None:
    receivers = [
        (on_stage_event, StageEvent),
        (on_payment_event, PaymentEvent),
        (on_invoice, Invoice),
        (on_call_attempt, CallAttempt),
        (on_customer_response, CustomerResponse),
        (on_touch, Touch),
    ]
    for receiver, model in receivers:
        post_save.connect(receiver, sender=model, dispatch_uid=f"hooks.{receiver.__name__}")
