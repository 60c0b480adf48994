import os

import pytest
from django.core.cache import cache
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from pipeline.accounts import SESSION_HAS_DEVICE
from pipeline.models import Role
from tests.factories import CustomerFactory, DealFactory, UserFactory
from tests.two_factor import device_for

# Playwright's sync API runs an event loop in the test thread; Django refuses
# ORM calls from a thread with a running loop unless told this is fine. Tests only.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The real hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache(settings):
    # Cached pages (pipeline.freshness) from one test must not answer another;
    # each test gets an empty in-memory cache, whatever CACHE_URL says.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()


@pytest.fixture
def manager(db):
    return UserFactory(username="manager", first_name="Morgan", role=Role.MANAGER)


@pytest.fixture
def rep(db, manager):
    return UserFactory(username="rep", first_name="Riley", role=Role.REP, manager=manager)


@pytest.fixture
def other_rep(db):
    """A rep on another manager's team."""
    other_manager = UserFactory(username="other_manager", role=Role.MANAGER)
    return UserFactory(username="other_rep", role=Role.REP, manager=other_manager)


@pytest.fixture
def teammate(db, manager):
    return UserFactory(username="rep2", role=Role.REP, manager=manager)


@pytest.fixture
def auditor(db):
    return UserFactory(username="auditor", role=Role.AUDITOR)


def _client_for(user) -> Client:
    """A client logged in as ``user``, past the two-factor code step if they have one.

    A manager or superuser gets a confirmed TOTP device (tests.two_factor) and a
    session verified with it, as django_otp.login leaves it after a right code.
    """
    client = Client()
    client.force_login(user)
    device = device_for(user)
    if device is not None:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session[SESSION_HAS_DEVICE] = True
        session.save()
    return client


@pytest.fixture
def rep_client(rep):
    return _client_for(rep)


@pytest.fixture
def manager_client(manager):
    return _client_for(manager)


@pytest.fixture
def auditor_client(auditor):
    return _client_for(auditor)


@pytest.fixture
def other_rep_client(other_rep):
    return _client_for(other_rep)


@pytest.fixture
def customer(rep):
    return CustomerFactory(owner=rep, name="Dana Whitfield", company="Whitfield Dental")


@pytest.fixture
def deal(rep, customer):
    return DealFactory(rep=rep, customer=customer)


from tests.browser import browser, page  # noqa: E402, F401 - fixtures
