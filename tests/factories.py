import datetime
from decimal import Decimal

import factory
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from audits.models import Audit, WrapUpChecklist
from billing import services as billing_services
from billing.models import Invoice, Payment, PaymentKind, PaymentMethodKind, PaymentStatus
from pipeline.models import Customer, Deal, Role, StageEvent, Touch, User
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from reminders.models import Reminder, ReminderKind


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            # get_or_create: transactional tests flush the groups the migration made.
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])
        self.save()


class RepFactory(UserFactory):
    role = Role.REP


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Faker("name")
    company = factory.Faker("company")
    # One phone each: customers sharing one are the same customer to Cleared
    # (pipeline.sameness), whose standing the newer one cannot beat.
    phone = factory.Sequence(lambda n: f"+1 555 {n:07d}")
    email = factory.Faker("email")
    owner = factory.SubFactory(RepFactory)


class DealFactory(factory.django.DjangoModelFactory):
    """A deal in Promised with its opening stage event, as deal_promise writes it."""

    class Meta:
        model = Deal
        skip_postgeneration_save = True

    rep = factory.SubFactory(RepFactory)
    sold_by = factory.SelfAttribute("rep")
    customer = factory.SubFactory(CustomerFactory, owner=factory.SelfAttribute("..rep"))
    title = "Website redesign"
    amount = Decimal("1000.00")
    payment_option = PaymentOption.INVOICE
    deposit_required = True
    expected_delivery_date = factory.LazyFunction(
        lambda: timezone.localdate() + datetime.timedelta(days=14)
    )
    next_step = "Call to confirm"
    next_step_date = factory.LazyFunction(lambda: timezone.localdate() + datetime.timedelta(days=2))
    stage = Stage.PROMISED

    @factory.post_generation
    def opening_event(self, create, extracted, **kwargs):
        if create:
            StageEvent.objects.create(deal=self, to_stage=Stage.PROMISED, actor=self.rep)


class TouchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Touch

    deal = factory.SubFactory(DealFactory)
    author = factory.SelfAttribute("deal.rep")
    kind = "call"
    discussed = "Talked it through"
    agreed_to = "A demo next week"
    next_step = "Send the demo link"
    next_step_date = factory.LazyFunction(lambda: timezone.localdate() + datetime.timedelta(days=3))


class PaymentFactory(factory.django.DjangoModelFactory):
    """A payment recorded, then cleared, bounced or charged back, through billing's services.

    Money goes through ``billing.services`` (``payment_record``, ``payment_clear``,
    ``payment_bounce``, ``payment_charge_back``), never a bare row, so the ledger
    events, the commission and the deal's money copies (``received_amount``,
    ``cleared_amount``) and stage are what the app would have written. ``status``
    says how far it goes; ``moved_by`` is the manager who clears or bounces it
    (the rep's manager unless given). The services' refusals (an overpayment,
    a lost deal) apply: a test about a refusal calls the service itself.
    """

    class Meta:
        model = Payment

    deal = factory.SubFactory(DealFactory, deposit_required=False)
    recorded_by = factory.SelfAttribute("deal.rep")
    kind = PaymentKind.FINAL
    method = PaymentMethodKind.CHECK
    amount = Decimal("200.00")
    reference = "Check 1001"
    invoice = None
    instalment = None
    status = PaymentStatus.PENDING
    moved_by = factory.LazyAttribute(lambda p: p.deal.rep.manager)
    reason = "Returned: insufficient funds"

    @classmethod
    def _create(cls, model_class, *, deal, status, moved_by, reason, **fields):
        payment = billing_services.payment_record(deal_id=deal.pk, **fields)
        if status in (PaymentStatus.CLEARED, PaymentStatus.CHARGED_BACK):
            payment = billing_services.payment_clear(payment_id=payment.pk, actor=moved_by)
        if status == PaymentStatus.CHARGED_BACK:
            payment = billing_services.payment_charge_back(
                payment_id=payment.pk, actor=moved_by, reason=reason
            )
        elif status == PaymentStatus.BOUNCED:
            payment = billing_services.payment_bounce(
                payment_id=payment.pk, actor=moved_by, reason=reason
            )
        deal.refresh_from_db()
        return payment


def _next_invoice_number() -> int:
    # The counter is read under its row lock, which needs a transaction: a browser
    # test (live_server, no test transaction) makes invoices outside one.
    with transaction.atomic():
        return billing_services._next_invoice_number()


class InvoiceFactory(factory.django.DjangoModelFactory):
    """An invoice row, numbered from the deployment's gap-free sequence.

    Written directly, not through ``billing.services.invoice_issue``, so that a
    test can give a deal that is not yet audited an invoice due on any day
    (the service bills only after the audit and only what is left to bill;
    tests about issuing call it). An invoice changes none of the deal's money
    copies: those follow payments only. ``due_date`` follows from
    ``issue_date`` and ``terms_days``; pass ``due_date`` alone to have the
    invoice issued ``terms_days`` before it.
    """

    class Meta:
        model = Invoice

    deal = factory.SubFactory(DealFactory, deposit_required=False)
    number = factory.LazyFunction(_next_invoice_number)
    amount = factory.SelfAttribute("deal.amount")
    terms_days = 30
    issue_date = factory.LazyAttribute(
        lambda i: (
            i.due_date - datetime.timedelta(days=i.terms_days)
            if i.due_date
            else timezone.localdate()
        )
    )
    due_date = None
    issued_by = factory.SelfAttribute("deal.rep")

    @classmethod
    def _create(cls, model_class, *, due_date, **fields):
        due_date = due_date or fields["issue_date"] + datetime.timedelta(days=fields["terms_days"])
        return super()._create(model_class, due_date=due_date, **fields)


class WrapUpChecklistFactory(factory.django.DjangoModelFactory):
    """A complete wrap-up checklist (the database refuses an incomplete one)."""

    class Meta:
        model = WrapUpChecklist

    deal = factory.SubFactory(DealFactory)
    call_window_start = factory.LazyFunction(timezone.now)
    call_window_end = factory.LazyAttribute(
        lambda w: w.call_window_start + datetime.timedelta(hours=1)
    )
    confirmed_phone = "+1 555 0199"
    customer_will_answer = True
    rep_gave_contact = True
    concerns = "none"
    call_time_reconfirmed = True
    reconfirmed_third_time = True
    completed_by = factory.SelfAttribute("deal.rep")


class AuditFactory(factory.django.DjangoModelFactory):
    """An open audit with its wrap-up checklist, for the same call window.

    Rows only: the deal stays in its stage. A test about handing a deal to
    audit calls ``audits.services.wrap_up_hand_over``, which also moves it.
    """

    class Meta:
        model = Audit

    deal = factory.SubFactory(DealFactory)
    rep = factory.SelfAttribute("deal.rep")
    call_window_start = factory.LazyFunction(timezone.now)
    call_window_end = factory.LazyAttribute(
        lambda a: a.call_window_start + datetime.timedelta(hours=1)
    )
    next_call_at = factory.SelfAttribute("call_window_start")
    wrap_up = factory.SubFactory(
        WrapUpChecklistFactory,
        deal=factory.SelfAttribute("..deal"),
        call_window_start=factory.SelfAttribute("..call_window_start"),
        call_window_end=factory.SelfAttribute("..call_window_end"),
    )


class ReminderFactory(factory.django.DjangoModelFactory):
    """A reminder row, for tests about the panel, the digests and the actions.

    Its owner is the deal's rep; pass ``owner=None, queue=...`` for a role
    queue's. ``occurrence`` is unique per deal and kind unless given.
    """

    class Meta:
        model = Reminder

    deal = factory.SubFactory(DealFactory)
    kind = ReminderKind.NEXT_STEP_DUE
    occurrence = factory.Sequence(lambda n: f"test-{n}")
    owner = factory.SelfAttribute("deal.rep")
    why = "Next step for today: Call to confirm"
    due_at = factory.LazyFunction(timezone.now)
