import pytest

from pipeline.stages import Stage
from tests.factories import DealFactory


@pytest.fixture
def delivered_deal(rep, customer):
    """An invoice deal for a good payer (no deposit), delivered, owing 1,000.00."""
    return DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)


from tests.reminders.test_worker import broker_url, database_url  # noqa: E402, F401 - fixtures
from tests.smtp import smtp_server  # noqa: E402, F401 - fixture: a real SMTP server
