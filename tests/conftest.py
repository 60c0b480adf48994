import os
import threading
import time
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import DatabaseError
from django.test import Client
from django.test.testcases import LiveServerThread
from django_otp import DEVICE_ID_SESSION_KEY

from billing.models import PaymentMethodKind
from billing.services import refunds as refund_services
from pipeline.accounts import SESSION_HAS_DEVICE
from pipeline.card_scan import find_card_numbers, tables_written_in_this_transaction
from pipeline.models import Role
from pipeline.stages import Stage
from tests import needs
from tests.factories import CustomerFactory, DealFactory, UserFactory
from tests.two_factor import device_for

# Playwright's sync API runs an event loop in the test thread; Django refuses
# ORM calls from a thread with a running loop unless told this is fine. Tests only.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


class _OneRequestAtATimeOnSharedSQLite(ThreadedWSGIServer):
    """The live server, serving one request at a time where its threads share a connection.

    On the in-memory SQLite test database, pytest-django's live server hands every
    request thread the test's one connection; two requests at once (the nav badge
    and the reminders panel polling together) used it concurrently and SQLite
    answered "bad parameter or other API misuse" (seen once in a bare run). There,
    the app is entered by one request at a time. On PostgreSQL each thread has its
    own connection and nothing changes. (Tests where the app waits on a request to
    itself, localstripe's webhooks, already run on PostgreSQL only.)
    """

    def set_app(self, application):
        if self.connections_override:
            lock, app = threading.Lock(), application

            def application(environ, start_response):
                with lock:
                    return app(environ, start_response)

        super().set_app(application)


LiveServerThread.server_class = _OneRequestAtATimeOnSharedSQLite


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The real hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache(settings):
    # What one test cached must not answer another; each test gets an empty
    # in-memory cache, whatever CACHE_URL says.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()


def pytest_report_header(config):
    """What this run is on, first thing in `make test`'s output."""
    from django.conf import settings

    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    on = f"database: {database}"
    if needs.NEEDS["needs_postgres"][1]():
        on += " (tests marked needs_postgres skip: set DATABASE_URL to run them)"
    redis = "redis-server found" if not needs.NEEDS["needs_redis"][1]() else "no redis-server"
    return [on, f"broker: {settings.CELERY_BROKER_URL.split('://')[0]}; {redis}"]


def pytest_collection_modifyitems(config, items):
    """A test marked ``needs_postgres`` or ``needs_redis`` skips, naming the service,
    where that service is missing (tests/needs.py)."""
    for item in items:
        reason = needs.skip_reason(item)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


_SKIPPED: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPPED.append((report.nodeid, reason.removeprefix("Skipped: ")))


def pytest_sessionfinish(session, exitstatus):
    """In CI no test skips silently: only a missing PostgreSQL may skip a test
    (the bare run, nothing set); on PostgreSQL nothing skips at all."""
    if not needs.in_ci() or exitstatus != pytest.ExitCode.OK:
        return
    bare = needs.NEEDS["needs_postgres"][1]()
    unexpected = [
        f"{nodeid}: {reason}"
        for nodeid, reason in _SKIPPED
        if not (bare and reason.startswith("needs PostgreSQL: "))
    ]
    if unexpected:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.ensure_newline()
        reporter.write_sep("=", "skipped in CI, where every test must run", red=True)
        for line in unexpected:
            reporter.write_line(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_SCAN_COST: list[float] = []
_DB_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences"}


@pytest.fixture(autouse=True)
def _no_card_number_stored(request):
    """After every test that used the database: no full card number was stored.

    Runs the scanner of ``manage.py find_card_numbers`` on every table of the
    test database (the libraries' too: the login throttle's, the admin log,
    sessions...) before the test's data is rolled back or flushed, so a test
    that makes Cleared, or a library under it, store a full number fails,
    whatever it asserts. On PostgreSQL only the tables the test's transaction
    wrote are read. Tests that plant
    raw numbers on purpose opt out with ``@pytest.mark.stores_card_numbers``.
    """
    names = set(request.fixturenames)
    uses_db = request.node.get_closest_marker("django_db") or names & _DB_FIXTURES
    if not uses_db or request.node.get_closest_marker("stores_card_numbers"):
        yield
        return
    # Set the database up before this fixture, so it is torn down after the scan.
    request.getfixturevalue(
        "transactional_db" if names & {"transactional_db", "live_server"} else "db"
    )
    yield
    started = time.perf_counter()
    try:
        # Inside a test's transaction only the tables it wrote can hold its numbers.
        findings = find_card_numbers(tables=tables_written_in_this_transaction())
    except DatabaseError:
        return  # the test broke its transaction: it has failed already
    finally:
        _SCAN_COST.append(time.perf_counter() - started)
    if findings:
        lines = "\n".join(f"  {finding}" for finding in findings)
        pytest.fail(f"This test left full card numbers in the database:\n{lines}", pytrace=False)


def pytest_terminal_summary(terminalreporter):
    if _SCAN_COST:
        total = sum(_SCAN_COST)
        terminalreporter.write_line(
            f"card number scan after {len(_SCAN_COST)} tests: {total:.2f} s in all, "
            f"{1000 * total / len(_SCAN_COST):.1f} ms a test "
            f"(median {1000 * sorted(_SCAN_COST)[len(_SCAN_COST) // 2]:.1f} ms, "
            f"max {1000 * max(_SCAN_COST):.0f} ms)"
        )


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


# --- Money tests shared by billing and the board's charts ---------------------


@pytest.fixture
def open_deal(rep, customer):
    """A delivered 5,000.00 deal, no deposit: payments on it never cover it (no stage move)."""
    return DealFactory(
        rep=rep,
        customer=customer,
        amount=Decimal("5000.00"),
        deposit_required=False,
        stage=Stage.DELIVERED,
    )


@pytest.fixture
def processor(monkeypatch):
    """A processor that owns card payments (their refunds are ``processing`` until it
    answers) and records the refunds it was asked to send."""
    sent: list[int] = []
    sender = refund_services.RefundSender(
        owns=lambda payment: payment.method == PaymentMethodKind.CARD, send=sent.append
    )
    monkeypatch.setattr(refund_services, "_senders", [sender])
    return sent


from tests.browser import browser, page  # noqa: E402, F401 - fixtures
