import pytest

from pipeline.models import Customer, Role
from tests.factories import CustomerFactory, UserFactory


@pytest.fixture
def dana(rep):
    """Dana Whitfield, a slow payer of Riley's."""
    customer = CustomerFactory(
        owner=rep,
        name="Dana Whitfield",
        company="Whitfield Dental",
        phone="555 300 0001",
        email="dana@whitfield.example",
    )
    Customer.objects.filter(pk=customer.pk).update(
        standing="slow", standing_reason="Pays 21 days late on average."
    )
    customer.refresh_from_db()
    return customer


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", is_superuser=True, role=Role.MANAGER)
