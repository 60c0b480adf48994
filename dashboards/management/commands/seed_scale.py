"""A realistic data set at scale, for the benchmark: bulk inserts, no services.

    python manage.py seed_scale --deals 100000

Teams of reps under managers, customers of every standing, deals in every
stage and payment option with their stage events, touches, payments (pending,
cleared, bounced) with their ledger rows and commission, invoices, audits
with their checklists and calls, and reminders. Rows are written with
``bulk_create`` in large batches (the services' one-deal-at-a-time rules and
locks are what the tests cover; this only has to look like their output).
"""

import random
from datetime import datetime, time, timedelta
from decimal import Decimal
from time import monotonic

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from audits.models import Audit, AuditState, CallAttempt, CallScript, Outcome, WrapUpChecklist
from billing.models import (
    CommissionEntry,
    CommissionKind,
    Invoice,
    InvoiceSequence,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentMethodKind,
    PaymentStatus,
)
from dashboards.seeding import (
    analyze,
    bulk_indexes_later,
    history_rows,
    outbox_rows,
    set_column,
    write,
)
from pipeline.deal_changes import DealChange
from pipeline.models import Customer, Deal, Role, StageEvent, Touch, User
from pipeline.not_paid import fold
from pipeline.stages import HAPPY_PATH, LostReason, Stage
from pipeline.terms import PaymentOption, Standing
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.schedule import schedules_wake

CHUNK = 50_000  # deals whose rows are built and copied at a time (bounded memory)
STAGE_WEIGHTS = {
    Stage.PROMISED: 15,
    Stage.DEPOSIT: 15,
    Stage.AUDIT_CONFIRMED: 10,
    Stage.DELIVERED: 20,
    Stage.PAYMENT_CLEARED: 30,
    Stage.LOST: 8,
    Stage.WRITTEN_OFF: 2,
}
PRODUCTS = [
    "Website redesign",
    "Annual support plan",
    "POS hardware bundle",
    "Network upgrade",
    "Security cameras",
    "Cloud backup",
    "Staff training day",
    "Online booking setup",
]
RATE = Decimal("0.10")


# The tables the load fills: their indexes and constraints are built after it.
LOADED = [
    Customer,
    Deal,
    StageEvent,
    Touch,
    Invoice,
    Payment,
    PaymentEvent,
    CommissionEntry,
    WrapUpChecklist,
    Audit,
    CallAttempt,
    Reminder,
    DealChange,
    *(m.history.model for m in (Deal, Customer, User, Payment, Invoice)),
]


class Command(BaseCommand):
    help = "Build a large realistic data set with bulk inserts (for bench/)."

    def add_arguments(self, parser):
        parser.add_argument("--deals", type=int, default=100_000)
        parser.add_argument("--reps-per-team", type=int, default=10)
        parser.add_argument(
            "--teams", type=int, default=0, help="default: one manager per 20,000 deals"
        )
        parser.add_argument("--seed", type=int, default=20261122)

    def handle(self, *args, deals: int, reps_per_team: int, teams: int, seed: int, **options):
        if User.objects.filter(username="scale_manager_1").exists():
            raise CommandError("Scale data is already loaded in this database.")
        started = monotonic()
        self.rng = random.Random(seed)  # noqa: S311 - test data
        self.now = timezone.now()
        with transaction.atomic(), bulk_indexes_later(LOADED):
            managers, reps = self._people(teams or max(1, deals // 20_000), reps_per_team)
            customers = self._customers(reps, max(deals // 5, 1))
            deal_rows = self._deals(reps, customers, deals)
            for first in range(0, len(deal_rows), CHUNK):
                chunk = deal_rows[first : first + CHUNK]
                self._history(chunk)
                self._money(chunk, managers)
                self._audits(chunk)
                self._reminders(chunk)
            del deal_rows, customers
            # Written in bulk, past the services: every deal is due for the
            # reminders' engine, which records its next moment (reminders.schedule).
            schedules_wake(now=self.now)
            loaded = monotonic() - started
            history = history_rows([Deal, Customer, User, Payment, Invoice])
            outbox = outbox_rows(recent=min(200, deals))
            derived = monotonic() - started - loaded
        indexed = monotonic() - started - loaded - derived
        # The Not paid yet summary as beat's hourly fold keeps it (the triggers
        # wrote a row for each of the 240 days loaded at once).
        fold()
        analyze()
        self.stdout.write(
            f"seed_scale: {Deal.objects.count():,} deals, {Customer.objects.count():,} customers, "
            f"{Payment.objects.count():,} payments, {Audit.objects.count():,} audits, "
            f"{Reminder.objects.count():,} reminders, {sum(history.values()):,} history rows, "
            f"{outbox:,} outbox rows in {monotonic() - started:.1f} s (rows {loaded:.0f} s, "
            f"history and outbox {derived:.0f} s, indexes and constraints {indexed:.0f} s)"
        )

    def _people(self, teams: int, reps_per_team: int):
        password = make_password("demo")
        managers = User.objects.bulk_create(
            [
                User(
                    username=f"scale_manager_{t + 1}",
                    password=password,
                    first_name="Manager",
                    last_name=str(t + 1),
                )
                for t in range(teams)
            ]
        )
        reps = User.objects.bulk_create(
            [
                User(
                    username=f"scale_rep_{t + 1}_{r + 1}",
                    password=password,
                    first_name="Rep",
                    last_name=f"{t + 1}.{r + 1}",
                    manager=managers[t],
                )
                for t in range(teams)
                for r in range(reps_per_team)
            ]
        )
        auditor = User.objects.create(username="scale_auditor", password=password)
        Group.objects.get(name=Role.MANAGER).user_set.add(*managers)
        Group.objects.get(name=Role.REP).user_set.add(*reps)
        Group.objects.get(name=Role.AUDITOR).user_set.add(auditor)
        self.auditor = auditor
        return managers, reps

    def _customers(self, reps, count: int):
        standings = self.rng.choices(
            [Standing.NEW, Standing.GOOD, Standing.SLOW], weights=[40, 45, 15], k=count
        )
        rows = []
        for index, standing in enumerate(standings):
            rows.append(
                Customer(
                    name=f"Customer {index:06d}",
                    company=f"Company {index % 997}",
                    phone=f"+1 555 {index:07d}",
                    owner=reps[index % len(reps)],
                    accounting_cutoff_day=self.rng.choice([None, 10, 15, 20, 25]),
                    standing=standing,
                    standing_reason="Seeded for the benchmark.",
                )
            )
        return write(Customer, rows)

    def _deals(self, reps, customers, count: int):
        stages = [s for s, weight in STAGE_WEIGHTS.items() for _ in range(weight)]
        options = list(PaymentOption.values)
        rows = []
        for index in range(count):
            customer = customers[index % len(customers)]
            stage = self.rng.choice(stages)
            option = options[index % 3]
            if option == PaymentOption.UPFRONT and stage == Stage.AUDIT_CONFIRMED:
                stage = Stage.DEPOSIT
            amount = Decimal(self.rng.randrange(20_000, 2_000_000)) / 100
            promised_at = self.now - timedelta(
                days=self.rng.randint(0, 240), minutes=self.rng.randint(0, 1440)
            )
            moved = min(self.now, promised_at + timedelta(days=self.rng.randint(0, 40)))
            cleared = Decimal("0.00")
            if stage == Stage.PAYMENT_CLEARED:
                cleared = amount
            elif stage == Stage.DELIVERED and index % 3 == 0:
                cleared = (amount * Decimal("0.4")).quantize(Decimal("0.01"))
            rows.append(
                Deal(
                    customer=customer,
                    rep=customer.owner,
                    sold_by=customer.owner,
                    title=self.rng.choice(PRODUCTS),
                    amount=amount,
                    payment_option=option,
                    deposit_required=option != PaymentOption.INVOICE or index % 2 == 0,
                    expected_delivery_date=(promised_at + timedelta(days=21)).date(),
                    next_step="Call to confirm the next step",
                    next_step_date=(self.now + timedelta(days=self.rng.randint(-10, 20))).date(),
                    stage=stage,
                    stage_changed_at=moved,
                    promised_at=promised_at,
                    delivered_at=moved
                    if stage in (Stage.DELIVERED, Stage.PAYMENT_CLEARED, Stage.WRITTEN_OFF)
                    else None,
                    lost_reason=LostReason.OTHER if stage == Stage.LOST else "",
                    cleared_amount=cleared,
                    received_amount=cleared,
                    created_at=promised_at,
                    updated_at=moved,  # as if the data had aged: last changed when it moved
                )
            )
        return write(Deal, rows)

    def _history(self, deals):
        events, touches = [], []
        for deal in deals:
            events.append(
                StageEvent(
                    deal=deal,
                    to_stage=Stage.PROMISED,
                    actor_id=deal.rep_id,
                    at=deal.promised_at,
                    reason="Customer said yes.",
                )
            )
            previous = Stage.PROMISED
            target = deal.stage if deal.stage in HAPPY_PATH else Stage.PROMISED
            for stage in HAPPY_PATH[1 : HAPPY_PATH.index(target) + 1]:
                if not deal.needs_stage(stage):
                    continue
                events.append(
                    StageEvent(
                        deal=deal, from_stage=previous, to_stage=stage, at=deal.stage_changed_at
                    )
                )
                previous = stage
            if deal.stage in (Stage.LOST, Stage.WRITTEN_OFF):
                events.append(
                    StageEvent(
                        deal=deal,
                        from_stage=previous,
                        to_stage=deal.stage,
                        actor_id=deal.rep_id,
                        at=deal.stage_changed_at,
                    )
                )
            touches.append(
                Touch(
                    deal=deal,
                    author_id=deal.rep_id,
                    kind="call",
                    happened_at=deal.promised_at + timedelta(hours=2),
                    discussed="Went through the order and the delivery plan.",
                    agreed_to="Go ahead as quoted.",
                    next_step=deal.next_step,
                    next_step_date=deal.next_step_date,
                )
            )
        write(StageEvent, events)
        write(Touch, touches)

    def _money(self, deals, managers):
        payments, invoices, received = [], [], []
        number = InvoiceSequence.objects.select_for_update().get_or_create(pk=1)[0].last_number
        for deal in deals:
            if deal.cleared_amount:
                payments.append(
                    Payment(
                        deal=deal,
                        kind=PaymentKind.FINAL,
                        method=PaymentMethodKind.BANK_TRANSFER,
                        amount=deal.cleared_amount,
                        recorded_by_id=deal.rep_id,
                        recorded_at=deal.stage_changed_at,
                        status=PaymentStatus.CLEARED,
                        status_changed_at=deal.stage_changed_at,
                        cleared_at=deal.stage_changed_at,
                    )
                )
            elif deal.stage in (Stage.DEPOSIT, Stage.AUDIT_CONFIRMED, Stage.DELIVERED):
                bounced = self.rng.random() < 0.03
                deposit = (deal.amount * Decimal("0.2")).quantize(Decimal("0.01"))
                if not bounced:  # the deal's copy of the money received (billing keeps it)
                    received.append((deal.pk, deposit))
                payments.append(
                    Payment(
                        deal=deal,
                        kind=PaymentKind.DEPOSIT,
                        method=PaymentMethodKind.CHECK,
                        amount=deposit,
                        recorded_by_id=deal.rep_id,
                        recorded_at=deal.stage_changed_at,
                        status=PaymentStatus.BOUNCED if bounced else PaymentStatus.PENDING,
                        status_changed_at=deal.stage_changed_at,
                    )
                )
            if deal.payment_option == PaymentOption.INVOICE and deal.delivered_at:
                number += 1
                issued = deal.delivered_at.date()
                invoices.append(
                    Invoice(
                        deal=deal,
                        number=number,
                        amount=deal.amount,
                        issue_date=issued,
                        terms_days=30,
                        due_date=issued + timedelta(days=30),
                        issued_by_id=deal.rep_id,
                        issued_at=deal.delivered_at,
                    )
                )
        InvoiceSequence.objects.filter(pk=1).update(last_number=number)
        write(Invoice, invoices)
        payments = write(Payment, payments)
        set_column(Deal, "received_amount", received)
        events, commission = [], []
        rep_of = {deal.pk: deal.rep_id for deal in deals}
        for payment in payments:
            events.append(
                PaymentEvent(
                    payment=payment,
                    to_status=PaymentStatus.PENDING,
                    actor_id=payment.recorded_by_id,
                    at=payment.recorded_at,
                )
            )
            if payment.status != PaymentStatus.PENDING:
                events.append(
                    PaymentEvent(
                        payment=payment,
                        from_status=PaymentStatus.PENDING,
                        to_status=payment.status,
                        actor_id=managers[0].pk,
                        at=payment.status_changed_at,
                        reason="Returned by the bank"
                        if payment.status == PaymentStatus.BOUNCED
                        else "",
                    )
                )
            if payment.status == PaymentStatus.CLEARED:
                commission.append(
                    CommissionEntry(
                        rep_id=rep_of[payment.deal_id],
                        deal_id=payment.deal_id,
                        payment=payment,
                        kind=CommissionKind.EARNED,
                        base=payment.amount,
                        rate=RATE,
                        amount=(payment.amount * RATE).quantize(Decimal("0.01")),
                        at=payment.cleared_at,
                    )
                )
        write(PaymentEvent, events)
        write(CommissionEntry, commission)

    def _audits(self, deals):
        script = CallScript.objects.order_by("-version").first()
        billed = [d for d in deals if d.payment_option != PaymentOption.UPFRONT]
        checklists, audits = [], []
        for deal in billed:
            confirmed = deal.stage in (
                Stage.AUDIT_CONFIRMED,
                Stage.DELIVERED,
                Stage.PAYMENT_CLEARED,
                Stage.WRITTEN_OFF,
            )
            if not confirmed and self.rng.random() > 0.3:
                continue
            start = deal.promised_at + timedelta(hours=1)
            if not confirmed:
                start = self.now + timedelta(minutes=self.rng.randint(-120, 600))
            checklists.append(
                WrapUpChecklist(
                    deal=deal,
                    call_window_start=start,
                    call_window_end=start + timedelta(hours=1),
                    confirmed_phone=deal.customer.phone,
                    customer_will_answer=True,
                    rep_gave_contact=True,
                    concerns="none",
                    call_time_reconfirmed=True,
                    reconfirmed_third_time=True,
                    completed_by_id=deal.rep_id,
                    completed_at=start,
                )
            )
            audits.append((deal, confirmed, start))
        checklists = write(WrapUpChecklist, checklists)
        audit_rows = [
            Audit(
                deal=deal,
                rep_id=deal.rep_id,
                wrap_up=checklist,
                state=AuditState.CONFIRMED if confirmed else AuditState.QUEUED,
                call_window_start=start,
                call_window_end=start + timedelta(hours=1),
                next_call_at=None if confirmed else start,
                queued_at=start,
                closed_at=start + timedelta(minutes=20) if confirmed else None,
            )
            for (deal, confirmed, start), checklist in zip(audits, checklists, strict=True)
        ]
        audit_rows = write(Audit, audit_rows)
        write(
            CallAttempt,
            [
                CallAttempt(
                    audit=audit,
                    auditor=self.auditor,
                    outcome=Outcome.CONFIRMED,
                    script=script,
                    at=audit.closed_at,
                )
                for audit in audit_rows
                if audit.state == AuditState.CONFIRMED
            ],
        )

    def _reminders(self, deals):
        rows = []
        for deal in deals:
            due = timezone.make_aware(datetime.combine(deal.next_step_date, time(9)))
            open_deal = deal.stage not in (Stage.PAYMENT_CLEARED, Stage.LOST, Stage.WRITTEN_OFF)
            rows.append(
                Reminder(
                    deal=deal,
                    kind=ReminderKind.CHECK_IN,
                    occurrence="once",
                    owner_id=deal.rep_id,
                    why="Post-sale check-in.",
                    due_at=deal.promised_at + timedelta(days=1),
                    state=ReminderState.DONE,
                    closed_at=deal.promised_at + timedelta(days=1),
                )
            )
            if open_deal:
                # Reps work their reminders: most past ones are done; the last
                # two days' and one in ten older ones are still waiting.
                if due > self.now:
                    state = ReminderState.SCHEDULED
                elif due > self.now - timedelta(days=2) or self.rng.random() < 0.1:
                    state = ReminderState.DUE
                else:
                    state = ReminderState.DONE
                rows.append(
                    Reminder(
                        deal=deal,
                        kind=ReminderKind.NEXT_STEP_DUE,
                        occurrence=deal.next_step_date.isoformat(),
                        owner_id=deal.rep_id,
                        why=f"Next step: {deal.next_step}",
                        due_at=due,
                        state=state,
                        notified_at=due if due <= self.now else None,
                        closed_at=due + timedelta(hours=3) if state == ReminderState.DONE else None,
                    )
                )
        write(Reminder, rows)
