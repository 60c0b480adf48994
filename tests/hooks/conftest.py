import pytest

from hooks import delivery
from hooks.models import EventType, Format, Subscription
from tests.hooks.receiver import Receiver


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.HOOKS_RETRY_BASE_SECONDS = 0


@pytest.fixture
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def subscription(manager, receiver):
    """The manager's subscription to every event, verified by the receiver."""
    made = Subscription.objects.create(
        owner=manager, url=receiver.url, events=list(EventType.values), format=Format.JSON
    )
    receiver.secret = made.secret
    return made


def deliver_all() -> int:
    """What beat's run would send now (the workers' path, called in the test)."""
    return delivery.deliveries_run()
