"""Generated input at every form, every query parameter of every page, and the webhook.

Property: whatever is sent, as the persona the page is for, the answer is never
a 5xx, and a refusal (4xx, or a POST answered with its form again) writes no
row anywhere. The URLs come from the URLconf, the fields from the forms each
view uses and the parameters each view (and the board's filters) reads, so a
new page or field is fuzzed without editing this file; a new URL must only be
given its persona below (the first test fails until it is).

Covered (``FUZZED``): every URL of config/urls.py but the admin, login/logout
and /healthz (``NOT_FUZZED`` says why).
"""

import datetime
import inspect
import json
import os
import re
import time
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from audits import services as audit_services
from audits.models import SCRIPT_QUESTIONS, CallScript
from billing import services as billing
from billing.models import PaymentStatus, WebhookEvent
from billing.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from dashboards import board
from pipeline.stages import Stage
from reminders.models import Reminder, ReminderKind, ReminderState
from tests.audits.conftest import checklist
from tests.conftest import _client_for
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db

# Per URL name: the persona it is for, and what fills its <int:...> argument.
FUZZED = {
    "home": ("rep", None),
    "deal_list": ("rep", None),
    "deal_board": ("rep", None),
    "deal_board_move": ("rep", None),
    "deal_new": ("rep", None),
    "deal_import": ("rep", None),
    "deal_terms": ("rep", None),
    "deal_detail": ("rep", "deal"),
    "deal_edit": ("rep", "deal"),
    "deal_move": ("rep", "deal"),
    "touch_new": ("rep", "deal"),
    "customer_list": ("rep", None),
    "customer_new": ("rep", None),
    "customer_detail": ("rep", "customer"),
    "customer_edit": ("rep", "customer"),
    "board": ("manager", None),
    "board_export": ("manager", None),
    "board_charts": ("manager", None),
    "reminder_list": ("rep", None),
    "reminder_panel": ("rep", None),
    "reminder_badge": ("rep", None),
    "reminder_done": ("rep", "reminder"),
    "reminder_snooze": ("rep", "reminder"),
    "billing:payment_list": ("manager", None),
    "billing:payment_status": ("manager", "payment"),
    "billing:invoice_list": ("rep", None),
    "billing:invoice_detail": ("rep", "invoice"),
    "billing:invoice_void": ("manager", "invoice"),
    "billing:commission": ("manager", None),
    "billing:payment_new": ("rep", "deal"),
    "billing:method_new": ("rep", "deal"),
    "billing:invoice_new": ("rep", "deal"),
    "billing:plan_new": ("rep", "deal"),
    "billing:deposit_waive": ("manager", "deposit_deal"),
    "billing:invoicing_allow": ("manager", "customer"),
    "audits:queue": ("auditor", None),
    "audits:report": ("manager", None),
    "audits:wrap_up": ("rep", "deposit_deal"),
    "audits:call": ("auditor", "audit"),
    "audits:claim": ("auditor", "audit"),
    "audits:release": ("auditor", "audit"),
    "audits:attempt_new": ("auditor", "audit"),
}
NOT_FUZZED = {
    "admin": "Django's own admin (operators only)",
    "login": "Django's LoginView; throttled and tested by the accounts work",
    "logout": "Django's LogoutView: takes no input",
    "healthz": "takes no input",
    "billing:payment_webhook": "signed JSON, not a form: test_the_webhook_never_fails below",
}
EXAMPLES = int(os.environ.get("CLEARED_FUZZ_EXAMPLES", "5"))
FUZZ = fuzz_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def routes() -> dict[str, tuple[str, object]]:
    """Every named URL of the URLconf: name -> (route, view), the admin's excluded."""
    found = {}

    def walk(patterns, prefix: str, namespace: str):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    found["admin"] = (prefix + str(pattern.pattern), None)
                    continue
                ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
            elif isinstance(pattern, URLPattern) and pattern.name:
                found[namespace + pattern.name] = (prefix + str(pattern.pattern), pattern.callback)

    walk(get_resolver().url_patterns, "/", "")
    return found


_READS = re.compile(r"""\b(?:request\.(?:GET|POST)|params)\.get\(\s*["'](\w+)["']""")
_FORMS = re.compile(r"\b(\w+Form)\(")


def input_names(view) -> list[str]:
    """What a view reads: its forms' fields, and the parameters its module (and the board) read."""
    module = inspect.getmodule(view)
    source = inspect.getsource(module)
    names = set(_READS.findall(source))
    if module.__name__ == "dashboards.board_views":  # the board reads its filters in one place
        names |= set(board.BoardFilters.__dataclass_fields__) - {"errors"} | {"after", "before"}
    for form_name in _FORMS.findall(inspect.getsource(view)):
        form = getattr(module, form_name, None)
        if form is not None and hasattr(form, "base_fields"):
            names |= set(form.base_fields)
            if form_name == "CallOutcomeForm":
                names |= {f"answer_{key}" for key, _ in SCRIPT_QUESTIONS}
    return sorted(names)


def test_every_url_is_fuzzed_or_says_why_not():
    assert set(routes()) == set(FUZZED) | set(NOT_FUZZED)


# --- the world the personas work in ----------------------------------------------


@pytest.fixture
def world(rep, manager, auditor, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    deposit_deal = DealFactory(rep=rep, customer=customer, stage=Stage.DEPOSIT)
    other = DealFactory(rep=rep, customer=customer, stage=Stage.DEPOSIT)
    payment = billing.payment_record(
        deal_id=deal.pk, recorded_by=rep, kind="final", method="check", amount=Decimal("100.00")
    )
    invoice = billing.invoice_issue(
        deal_id=deal.pk,
        issued_by=rep,
        amount=Decimal("500.00"),
        issue_date=timezone.localdate(),
        terms_days=30,
    )
    reminder = Reminder.objects.create(
        deal=deal,
        kind=ReminderKind.NEXT_STEP_DUE,
        owner=rep,
        occurrence="fuzz",
        state=ReminderState.DUE,
        why="Next step",
        due_at=timezone.now() - datetime.timedelta(minutes=5),
    )
    CallScript.objects.current()
    audit = audit_services.wrap_up_hand_over(deal_id=other.pk, rep=rep, **checklist())
    objects = {
        "deal": deal,
        "deposit_deal": deposit_deal,
        "customer": customer,
        "payment": payment,
        "invoice": invoice,
        "reminder": reminder,
        "audit": audit,
    }
    clients = {"rep": _client_for(rep), "manager": _client_for(manager)}
    clients["auditor"] = _client_for(auditor)
    return {"objects": objects, "clients": clients}


def _tables() -> list[str]:
    tables = []
    for label in ("pipeline", "billing", "audits", "reminders", "auth"):
        try:
            config = apps.get_app_config(label)
        except LookupError:
            continue
        tables += [model._meta.db_table for model in config.get_models()]
    # The page cache's bookkeeping row, made on first read, is not a write of the request's.
    return sorted(set(tables) - {"pipeline_stamp"})


def row_counts() -> tuple[int, ...]:
    sql = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {t})" for t in _tables())  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()


# --- what is sent ---------------------------------------------------------------

TODAY = datetime.date.today()
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
# Each family of input that broke a page once, as its own strategy, so each is drawn often.
nasty = st.one_of(
    text.map(lambda t: t + "\x00"),  # PostgreSQL refuses NUL in any text
    st.text("0123456789²³¹١٢٣٤०߀", min_size=1, max_size=5),  # str.isdigit(), int() refuses
    st.integers(4300, 6000).map(lambda n: "9" * n),  # int() refuses over 4,300 digits
    st.sampled_from(["9999-12-31", "0001-01-01", "9999-12", "0-0", "9999-12-31T23:59"]),
    st.sampled_from(["0001-01-01T00:00+14:00", "9999-12-31T23:59-14:00", "NaN", "-Infinity"]),
    st.sampled_from(['=HYPERLINK("http://x","y")', "+1", "-1", "@x", "\t=1", "\r\n"]),
    st.sampled_from(["not-a-url", "//evil.example", "/\r\nSet-Cookie: x", "[]", "{'a': 1}"]),
)
numbers = st.integers(min_value=-(10**30), max_value=10**30).map(str)
decimals = st.decimals(allow_nan=True, allow_infinity=True).map(str)
dates = st.dates(min_value=datetime.date(1, 1, 1)).map(datetime.date.isoformat)
near_dates = st.integers(-400, 800).map(lambda d: (TODAY + datetime.timedelta(days=d)).isoformat())
datetimes = st.datetimes(min_value=datetime.datetime(1, 1, 2)).map(
    lambda moment: moment.isoformat(timespec="minutes")
)


def plausible(world) -> st.SearchStrategy:
    """Values a real page would send: ids of the world's rows, choices, versions."""
    values = [str(obj.pk) for obj in world["objects"].values()]
    values += [s.value for s in Stage] + [s.value for s in PaymentStatus]
    values += ["hour", "morning", "at", "yes", "no", "home", "1", "2", "100.00", "confirmed"]
    values += ["upfront", "on_file", "invoice", "deposit", "final", "check", "card", "open"]
    values += list(board.SORTS) + [f"-{key}" for key in board.SORTS] + ["0-30", "90+", "good"]
    return st.one_of(st.sampled_from(values), near_dates)


def fuzz_value(world) -> st.SearchStrategy:
    scalar = st.one_of(nasty, nasty, nasty, text, numbers, decimals, dates, datetimes)
    # A list is the same field sent several times.
    return st.one_of(scalar, scalar, scalar, st.lists(scalar, min_size=2, max_size=3))


@st.composite
def request_data(draw, names, world):
    """Plausible values in most fields (to get past the first check), fuzz in one or two."""
    data = {}
    everywhere = draw(st.booleans())  # fuzz in every field, or in one or two only
    for name in names:
        if draw(st.integers(0, 3)):  # three times in four: sent
            data[name] = draw(fuzz_value(world) if everywhere else plausible(world))
    for name in draw(st.lists(st.sampled_from([*names, "x", "q", "next"]), min_size=1, max_size=2)):
        data[name] = draw(fuzz_value(world))
    return data


def _path(name: str) -> str:
    route, _ = routes()[name]
    return route


@pytest.mark.parametrize("name", sorted(FUZZED))
def test_no_input_makes_a_page_fail_or_write_half(world, name):
    route, view = routes()[name]
    persona, arg = FUZZED[name]
    client: Client = world["clients"][persona]
    path = re.sub(r"<int:\w+>", str(world["objects"][arg].pk) if arg else "", route)
    names = input_names(view)

    @FUZZ
    @given(method=st.sampled_from(["get", "post"]), data=request_data(names, world))
    def check(method, data):
        with transaction.atomic():
            before = row_counts()
            response = getattr(client, method)(path, data)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
            assert response.status_code < 500, (method, path, data)
            refused = response.status_code >= 400 or (
                method == "post" and response.status_code == 200
            )
            if refused:
                assert row_counts() == before, (method, path, data, response.status_code)
            transaction.set_rollback(True)

    check()


# --- the webhook ----------------------------------------------------------------

SECRET = "fuzz-webhook-secret"
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text, nasty
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def events(draw, payment_id: int):
    kind = st.sampled_from(["payment.cleared", "payment.bounced", "payment.charged_back"])
    event = {
        "id": draw(st.one_of(st.uuids().map(str), json_value)),
        "type": draw(st.one_of(kind, json_value)),
        "data": draw(
            st.one_of(
                st.fixed_dictionaries(
                    {"payment_id": st.one_of(st.just(payment_id), json_value)},
                    optional={"reason": json_value},
                ),
                json_value,
            )
        ),
    }
    if draw(st.booleans()):
        event["extra"] = draw(json_value)
    return event


@fuzz_settings(FUZZ, max_examples=EXAMPLES * 4)
@given(data=st.data())
def test_the_webhook_never_fails_and_a_refusal_writes_nothing(settings, world, data):
    settings.CLEARED_WEBHOOK_SECRET = SECRET
    payment = world["objects"]["payment"]
    raw = json.dumps(data.draw(events(payment.pk))).encode()
    now = str(int(time.time()))
    timestamp = data.draw(st.one_of(st.just(now), st.just(now), nasty, numbers, text))
    signature = sign(raw, timestamp, SECRET) if timestamp.isascii() else "sha256=x"
    with transaction.atomic():
        before = row_counts()
        response = Client().post(
            "/billing/webhooks/payments/",
            raw,
            content_type="application/json",
            headers={TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature},
        )
        assert response.status_code < 500, raw
        if response.status_code != 200:
            assert row_counts() == before
        else:
            assert WebhookEvent.objects.count() >= 1
        transaction.set_rollback(True)
