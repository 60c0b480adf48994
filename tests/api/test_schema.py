"""Schemathesis against the API's own OpenAPI schema, as each persona, through the
WSGI app: no 5xx, every answer conforms to the schema, and an id the persona may
not see is a 404 (never its data).

A few examples an operation (``CLEARED_SCHEMA_EXAMPLES``, default 3): seconds, not
minutes; raise it to search harder.
"""

import os
import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.api import api
from api.schemas import PROBLEM_CODES
from audits import services as audit_services
from billing.models import Payment
from pipeline.models import Customer, Deal
from pipeline.stages import Stage
from reminders.models import Reminder
from tests.api.conftest import api_for
from tests.audits.conftest import checklist
from tests.factories import DealFactory, InvoiceFactory, PaymentFactory, ReminderFactory

pytestmark = pytest.mark.django_db(transaction=False)

schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
schema.app = get_wsgi_application()
# Generated examples only: the coverage phase's hundreds of boundary cases an
# operation would make this a many-minute test (CLEARED_SCHEMA_PHASES widens it).
schema.config.phases.update(
    phases=os.environ.get("CLEARED_SCHEMA_PHASES", "examples,fuzzing").split(",")
)
EXAMPLES = int(os.environ.get("CLEARED_SCHEMA_EXAMPLES", "3"))
PERSONAS = ["rep", "other_rep", "manager", "other_manager", "auditor"]
# What an id in a path names, and how to ask whether a person may see it.
VISIBLE = {
    "deal_id": lambda user: Deal.objects.visible_to(user),
    "customer_id": lambda user: Customer.objects.visible_to(user),
    "payment_id": lambda user: Payment.objects.visible_to(user),
    "reminder_id": lambda user: Reminder.objects.filter(owner=user),
}


@pytest.fixture(autouse=True)
def _one_connection():
    """The WSGI app closes the database connection after each request (Django's
    ``request_finished``); the test's transaction lives on it, so keep it open,
    as Django's own test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(rep, manager, other_rep, auditor, settings):
    """One of everything on the rep's team, and one deal on another team."""
    settings.CLEARED_API_RATE = 100_000
    deal = DealFactory(rep=rep, deposit_required=False)
    PaymentFactory(deal=deal)
    InvoiceFactory(deal=deal)
    ReminderFactory(deal=deal)
    billed = DealFactory(rep=rep, stage=Stage.DEPOSIT)
    audit_services.wrap_up_hand_over(deal_id=billed.pk, rep=rep, **checklist())
    DealFactory(rep=other_rep)
    return {
        "rep": rep,
        "other_rep": other_rep,
        "manager": manager,
        "other_manager": other_rep.manager,
        "auditor": auditor,
    }


def _ids_in(path: str, case) -> dict[str, int]:
    return {
        name: value
        for name, value in (case.path_parameters or {}).items()
        if name in VISIBLE and isinstance(value, int)
    }


def _check(case, persona: str, user, token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
    if 200 <= response.status_code < 300:
        for name, value in _ids_in(case.path, case).items():
            assert VISIBLE[name](user).filter(pk=value).exists(), (
                f"{persona} got a {response.status_code} for {name}={value} they may not see"
            )
    if response.status_code in PROBLEM_CODES:
        content_type = response.headers.get("content-type", [""])
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json"), (
            response.status_code,
            case.method,
            case.formatted_path,
            response.text[:300],
        )


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_api_keeps_its_schema_and_its_secrets(persona, world):
    """Every operation, as one persona, on one set of data (set up once: the
    examples, not the fixtures, are what is worth the time)."""
    user = world[persona]
    token = api_for(user).secret
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            _check(case, persona, user, token)

        run()


def test_the_schema_is_openapi_3_with_bearer_tokens():
    document = api.get_openapi_schema()
    assert re.match(r"3\.\d", document["openapi"])
    assert document["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    assert all(path.startswith("/api/v1/") for path in document["paths"])
