import datetime
from decimal import Decimal

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from pipeline.models import Customer, Deal, Role, StageEvent, Touch, User
from pipeline.stages import Stage
from pipeline.terms import PaymentOption


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
    phone = "+1 555 0199"
    email = factory.Faker("email")
    owner = factory.SubFactory(RepFactory)


class DealFactory(factory.django.DjangoModelFactory):
    """A deal in Promised with its opening stage event, as deal_promise writes it."""

    class Meta:
        model = Deal
        skip_postgeneration_save = True

    rep = factory.SubFactory(RepFactory)
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
