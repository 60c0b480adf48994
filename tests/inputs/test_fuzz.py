"""Generated input at every form, every query parameter of every page, and the webhook.

Property: whatever is sent, as the persona the page is for, the answer is never
a 5xx, and a refusal (4xx, or a POST answered with its form again) writes no
row anywhere. The URLs come from the URLconf, the fields from the forms each
view uses and the parameters each view (and the board's filters) reads, so a
new page or field is fuzzed without editing this file; a new URL must only be
given its persona below (the first test fails until it is).

Covered (``FUZZED``): every URL of config/urls.py but the admin, login/logout
and /healthz (``NOT_FUZZED`` says why). A link with a token in it (the team
invitation, the password reset) is fuzzed with the real link and with garbage in
each part; a page that changes its client's session (log out everywhere, two-factor
on or off, a password change) gets a fresh client per example (``FRESH_CLIENT``).
"""

import datetime
import inspect
import json
import os
import re
import time
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib.auth.tokens import default_token_generator
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from audits import services as audit_services
from audits.models import SCRIPT_QUESTIONS, CallScript, DisputeDecision, Outcome
from billing import services as billing
from billing.models import PaymentMethod, PaymentStatus, WebhookEvent
from billing.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from dashboards import board
from hooks import calendar_feed
from hooks import services as hooks_services
from hooks.models import Subscription
from online import on_file
from online.models import Intent, OnFileCharge, OnFileSetup
from pipeline import enrollment, team
from pipeline.models import Role
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from pipeline.terms_history import TermsChange, TermsChangeState, TermsPath
from receivables import links as customer_links
from reminders.models import Reminder, ReminderKind, ReminderState
from tests.audits.conftest import checklist, record
from tests.conftest import _client_for
from tests.factories import CustomerFactory, DealFactory, UserFactory

pytestmark = pytest.mark.django_db

# Per URL name: the persona it is for (or several, one drawn per example), and what
# fills its <int:...> argument (a row of the world) or its link arguments (``links``).
FUZZED = {
    "home": ("rep", None),
    "search": ("rep", None),
    "deal_list": ("rep", None),
    "deal_board": ("rep", None),
    "deal_board_move": ("rep", None),
    "deal_new": ("rep", None),
    "deal_import": ("rep", None),
    "deal_terms": ("rep", None),
    "deal_customer_new": ("rep", None),
    "deal_detail": ("rep", "deal"),
    # API tokens on the Security page (the revoke's id: any row id will do).
    "api_token_create": ("rep", None),
    "api_token_created": ("rep", None),
    "api_token_revoke": ("rep", "deal"),
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
    "activity": ("manager", None),
    "customer_matches": ("rep", None),
    "customer_merge": ("manager", "merge_link"),
    "customer_distinct": ("manager", "distinct_link"),
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
    "billing:invoice_pdf": ("rep", "invoice"),
    "billing:chase_now": ("rep", "invoice"),
    "billing:invoice_send": ("rep", "invoice"),
    "billing:chase": (("rep", "manager"), "chase_link"),
    "billing:chasing": ("manager", None),
    "billing:chasing_save": ("manager", "chasing_save_link"),
    "billing:chasing_preview": ("manager", "chasing_preview_link"),
    "billing:commission": ("manager", None),
    "billing:payment_new": ("rep", "deal"),
    "billing:method_new": ("manager", "deal"),
    "billing:payment_refund": ("manager", "payment"),
    "on_file:card_link_send": ("rep", "deal"),
    "on_file:card_charge": ("rep", "deal"),
    "on_file:team_charging": ("manager", None),
    "on_file:card_setup": ("anonymous", "card_link"),
    "on_file:card_setup_done": ("anonymous", "card_done_link"),
    "on_file:authenticate": ("anonymous", "auth_link"),
    "on_file:authenticate_done": ("anonymous", "auth_done_link"),
    "billing:invoice_new": ("rep", "deal"),
    "billing:plan_new": ("rep", "deal"),
    "billing:deposit_waive": ("manager", "deposit_deal"),
    "billing:invoicing_allow": ("manager", "customer"),
    "billing:deal_invoicing_ask": ("rep", None),
    "billing:deposit_waiver_ask": ("rep", "ask_deal"),
    "billing:exception_decide": ("manager", "exception_request"),
    "billing:customer_statement": ("rep", "customer"),
    "billing:customer_statement_pdf": ("rep", "customer"),
    "billing:dso_report": ("manager", None),
    "billing:link_new": ("rep", "customer"),
    "billing:link_revoke": ("rep", "customer_link"),
    "billing:customer_link": ("anonymous", "pay_link"),
    "audits:queue": ("auditor", None),
    "audits:report": ("manager", None),
    "audits:wrap_up": ("rep", "deposit_deal"),
    "audits:call": ("auditor", "audit"),
    "audits:claim": ("auditor", "audit"),
    "audits:release": ("auditor", "audit"),
    "audits:attempt_new": ("auditor", "audit"),
    "audits:dispute": (("manager", "auditor"), "disputed_deal"),  # the manager decides
    "team": ("manager", None),
    "team_invite": ("manager", None),
    "terms_change_decide": ("manager", "terms_change"),
    "team_deactivate": ("manager", "teammate"),
    "team_join": ("anonymous", "join_link"),
    "two_factor_enroll": ("anonymous", "enroll_link"),
    "billing:commission_rate": ("manager", "rep"),
    "hooks:subscription_list": ("manager", None),
    "hooks:subscription_new": ("manager", None),
    "hooks:subscription_detail": ("manager", "subscription"),
    "hooks:subscription_enable": ("manager", "subscription"),
    "hooks:subscription_disable": ("manager", "subscription"),
    "hooks:subscription_delete": ("manager", "subscription"),
    "hooks:subscription_test": ("manager", "subscription"),
    "hooks:delivery_resend": ("manager", "resend_link"),
    "hooks:calendar_feed_new": ("rep", None),
    "hooks:calendar_feed_created": ("rep", None),
    "hooks:calendar_feed_revoke": ("rep", None),
    "hooks:calendar_feed": ("anonymous", "calendar_link"),
    "password_reset": ("anonymous", None),
    "password_reset_done": ("anonymous", None),
    "password_reset_confirm": ("anonymous", "reset_link"),
    "password_reset_complete": ("anonymous", None),
    "password_change": ("rep", None),
    "password_change_done": ("rep", None),
    "two_factor_verify": ("manager_password_only", None),
    "two_factor_setup": ("rep", None),
    "two_factor_recovery_codes": ("rep", None),
    "account_security": ("rep", None),
    "recovery_codes_regenerate": ("manager", None),
    "two_factor_remove": ("rep_with_device", None),
    "log_out_everywhere": ("rep", None),
}
# Pages that change the client's own session (log it out, verify it, turn two-factor
# on or off, change its password): each example gets a fresh client, made by this
# (world, path) -> Client, inside the example's rolled-back transaction.
FRESH_CLIENT = {
    "password_change": lambda world, path: world["login"]("rep"),
    "log_out_everywhere": lambda world, path: world["login"]("rep"),
    "two_factor_verify": lambda world, path: world["login"]("manager_password_only"),
    "two_factor_remove": lambda world, path: world["login"]("rep_with_device"),
    "recovery_codes_regenerate": lambda world, path: world["login"]("manager"),
    # As a person would: the page is seen (its unconfirmed device made) before a code is sent.
    "two_factor_setup": lambda world, path: _after_get(world["login"]("rep"), path),
    # The reset link puts its token in the session, then sends to .../set-password/.
    "password_reset_confirm": lambda world, path: _after_get(Client(), world["reset_link"]),
    "team_join": lambda world, path: Client(),
    # As on the setup page: the link is opened (its unconfirmed device made) before a post.
    "two_factor_enroll": lambda world, path: _after_get(Client(), path),
    "billing:customer_link": lambda world, path: Client(),
}
NOT_FUZZED = {
    "admin": "Django's own admin (operators only)",
    "login": "Django's LoginView; throttled and tested by the accounts work",
    "logout": "Django's LogoutView: takes no input",
    "healthz": "takes no input",
    "billing:payment_webhook": "signed JSON, not a form: test_the_webhook_never_fails below",
    "online:stripe_webhook": "Stripe's signed JSON, not a form: bad signatures and garbage "
    "bodies get a 400, never a 500 (tests/online/test_paying.py)",
    "online:pay": "the customer's pay page takes no input but the link in its URL (forged "
    "tokens, another customer's invoice: 404, tests/online/test_paying.py); it asks the processor",
    "online:pay_start": "takes no input but the link in its URL (see online:pay); a double "
    "click records one payment (tests/online/test_paying.py)",
}
# Whole namespaces fuzzed elsewhere.
NOT_FUZZED_NAMESPACES = {
    "api-v1:": "the API (JSON, token auth): Schemathesis fuzzes every operation against its "
    "OpenAPI schema as each persona (tests/api/test_schema.py)",
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
    view_class = getattr(view, "view_class", None)
    if view_class is not None:  # Django's class-based views (the password pages): their form
        form = view.view_initkwargs.get("form_class") or getattr(view_class, "form_class", None)
        return sorted(form.base_fields) if form is not None else []
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
    named = {name for name in routes() if not name.startswith(tuple(NOT_FUZZED_NAMESPACES))}
    assert named == set(FUZZED) | set(NOT_FUZZED)


# --- the world the personas work in ----------------------------------------------


@pytest.fixture
def world(rep, manager, auditor, customer, teammate):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    deposit_deal = DealFactory(rep=rep, customer=customer, stage=Stage.DEPOSIT)
    other = DealFactory(rep=rep, customer=customer, stage=Stage.DEPOSIT)
    disputed_deal = DealFactory(
        rep=rep, customer=customer, stage=Stage.DEPOSIT, payment_option=PaymentOption.INVOICE
    )
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
    ask_deal = DealFactory(rep=rep, customer=customer, payment_option=PaymentOption.INVOICE)
    exception_request = billing.deposit_waiver_ask(
        deal_id=ask_deal.pk, rep=rep, reason="Long-standing customer"
    )
    # A change of frozen terms the rep asked their manager for (pipeline.terms_history).
    terms_change = TermsChange.objects.create(
        deal=deal,
        path=TermsPath.MANAGER,
        state=TermsChangeState.ASKED,
        changes={"title": {"label": "What is sold", "from": "a", "to": "b"}},
        reason="The customer asked for the bigger package",
        asked_by=rep,
    )
    CallScript.objects.current()
    audit = audit_services.wrap_up_hand_over(deal_id=other.pk, rep=rep, **checklist())
    disputed = audit_services.wrap_up_hand_over(deal_id=disputed_deal.pk, rep=rep, **checklist())
    record(disputed, auditor, Outcome.DISPUTED, notes="Never heard of your service.")
    customer_link = customer_links.customer_link_create(
        customer=customer, invoice=invoice, created_by=rep
    )
    invited = team.team_invite(manager=manager, email="invited@example.com", first_name="Ivy")
    subscription = Subscription.objects.create(
        owner=manager, url="https://hooks.example/cleared", events=["deal.lost"]
    )
    hooks_services.subscription_send_test(subscription=subscription, actor=manager)
    delivery = subscription.deliveries.get()
    calendar_token = calendar_feed.calendar_feed_create(user=rep)
    TOTPDevice.objects.create(user=teammate, name="Rep's own authenticator", confirmed=True)
    objects = {
        "deal": deal,
        "deposit_deal": deposit_deal,
        "disputed_deal": disputed_deal,
        "customer": customer,
        "payment": payment,
        "invoice": invoice,
        "reminder": reminder,
        "ask_deal": ask_deal,
        "exception_request": exception_request,
        "audit": audit,
        "rep": rep,
        "teammate": teammate,
        "customer_link": customer_link,
        "subscription": subscription,
        "terms_change": terms_change,
    }
    users = {
        "rep": rep,
        "manager": manager,
        "auditor": auditor,
        "rep_with_device": teammate,  # a rep who turned the optional two-factor on
    }

    def login(persona: str) -> Client:
        if persona == "anonymous":
            return Client()
        if persona == "manager_password_only":  # past the log-in form, not the code yet
            client = Client()
            client.post("/accounts/login/", {"username": manager.username, "password": "pw"})
            return client
        return _client_for(users[persona])

    # A rep who forgot their password, never logged in here: a log-in would spend the token.
    forgetful = UserFactory(username="forgetful", role=Role.REP, manager=manager)
    twin = CustomerFactory(owner=rep, name=customer.name, phone=customer.phone)
    reset_link = _link("password_reset_confirm", forgetful)
    # A new manager an operator sent the link that sets password and two-factor up.
    newcomer = UserFactory(username="newcomer", role=Role.MANAGER)
    newcomer.set_unusable_password()
    newcomer.save(update_fields=["password"])
    links = {
        "join_link": [_link("team_join", invited)],
        "enroll_link": [enrollment.enrollment_path(newcomer)],
        "reset_link": [reset_link, reset_link.replace(reset_link.split("/")[-2], "set-password")],
        # A rung of the chase (days after the due date) is not a row: real rungs.
        "chase_link": [reverse("billing:chase", args=[invoice.pk, rung]) for rung in (0, 7)],
        "chasing_save_link": [reverse("billing:chasing_save", args=[rung]) for rung in (0, 30)],
        "chasing_preview_link": [reverse("billing:chasing_preview", args=[7])],
        "pay_link": [customer_links.customer_link_path(customer_link)],
        # The card on file's customer pages: a link used, a charge answered (no processor).
        **on_file_links(rep, manager),
        "resend_link": [reverse("hooks:delivery_resend", args=[subscription.pk, delivery.pk])],
        "calendar_link": [reverse("hooks:calendar_feed", args=[calendar_token])],
        # Two customers' ids: the customer and a likely duplicate of theirs.
        "merge_link": [reverse("customer_merge", args=[customer.pk, twin.pk])],
        "distinct_link": [reverse("customer_distinct", args=[customer.pk, twin.pk])],
    }
    return {
        "objects": objects,
        "login": login,
        "links": links,
        "reset_link": reset_link,
    }


def on_file_links(rep, manager) -> dict[str, list[str]]:
    """The customer's card-on-file pages for a link already used and a charge answered
    (cleared), so no example waits on the processor."""
    deal = DealFactory(rep=rep, deposit_required=False, stage=Stage.DELIVERED)
    payment = billing.payment_record(
        deal_id=deal.pk, recorded_by=rep, kind="final", method="card", amount=Decimal("100.00")
    )
    billing.payment_clear(payment_id=payment.pk, actor=manager)
    method = PaymentMethod.objects.create(
        customer=deal.customer,
        deal=deal,
        kind="card",
        processor_token="pm_fuzz",
        brand="Visa",
        last4="4242",
        recorded_by=rep,
    )
    setup = OnFileSetup.objects.create(
        deal=deal, key="fuzz", sent_to="a@example.com", created_by=rep,
        processor_id="seti_fuzz", completed_at=timezone.now(), method=method,
    )  # fmt: skip
    intent = Intent.objects.create(
        processor_id="pi_fuzz", purpose="off_session", deal=deal, amount=payment.amount,
        currency="usd",
    )  # fmt: skip
    charge = OnFileCharge.objects.create(
        deal=deal, method=method, amount=payment.amount, intent=intent, payment=payment
    )
    setup_token, auth_token = on_file.setup_token(setup), on_file.auth_token(charge)
    return {
        "card_link": [reverse("on_file:card_setup", args=[setup_token])],
        "card_done_link": [reverse("on_file:card_setup_done", args=[setup_token])],
        "auth_link": [reverse("on_file:authenticate", args=[auth_token])],
        "auth_done_link": [reverse("on_file:authenticate_done", args=[auth_token])],
    }


def _link(name: str, user) -> str:
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse(name, args=[uidb64, default_token_generator.make_token(user)])


def _after_get(client: Client, path: str) -> Client:
    client.get(path)
    return client


def _tables() -> list[str]:
    tables = []
    labels = ("pipeline", "billing", "receivables", "audits", "reminders", "hooks")
    for label in (*labels, "auth", "otp_totp", "otp_static"):
        try:
            config = apps.get_app_config(label)
        except LookupError:
            continue
        tables += [model._meta.db_table for model in config.get_models()]
    # The page cache's bookkeeping row, made on first read, is not a write of the request's.
    return sorted(tables)


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
    values += [d.value for d in DisputeDecision]
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


segments = text.filter(bool).map(lambda t: quote(t, safe=""))


@st.composite
def paths(draw, route: str, arg, world):
    """The page's path: its row's id, or for a link a real one or garbage in each part."""
    if arg in world["links"]:
        if draw(st.booleans()):
            return draw(st.sampled_from(world["links"][arg]))
        return re.sub(r"<[^>]+>", lambda _: draw(segments), route)
    return re.sub(r"<int:\w+>", str(world["objects"][arg].pk) if arg else "", route)


@pytest.mark.parametrize("name", sorted(FUZZED))
def test_no_input_makes_a_page_fail_or_write_half(world, name):
    route, view = routes()[name]
    persona, arg = FUZZED[name]
    personas = persona if isinstance(persona, tuple) else (persona,)
    fresh = FRESH_CLIENT.get(name)
    # Logged in once, outside the examples' transactions (which roll back their sessions).
    clients = {} if fresh else {persona: world["login"](persona) for persona in personas}
    names = input_names(view)

    @FUZZ
    @given(
        method=st.sampled_from(["get", "post"]),
        persona=st.sampled_from(personas),
        path=paths(route, arg, world),
        data=request_data(names, world),
    )
    def check(method, persona, path, data):
        with transaction.atomic():
            client: Client = fresh(world, path) if fresh else clients[persona]
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
