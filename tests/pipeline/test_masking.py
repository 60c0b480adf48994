"""No full card number anywhere: the masker, every text field, the logs, the scanner.

README.md, "Card numbers". The tables below are the formats and contexts a
card number is recognised in; each row is one test case.
"""

import io
import logging
import runpy
from datetime import date, timedelta
from decimal import Decimal

import pytest
from celery.signals import after_setup_logger
from django.apps import apps
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.servers.basehttp import WSGIRequestHandler
from django.db import IntegrityError, connection, models, transaction
from gunicorn.config import Config

from billing.models import WebhookEvent
from config.celery import app
from pipeline.card_scan import (
    UNMASKED,
    find_card_numbers,
    tables_written_in_this_transaction,
    text_fields,
)
from pipeline.masking import (
    MaskCardNumbersFilter,
    MaskingFormatter,
    luhn_valid,
    mask_card_numbers,
    mask_json,
    mask_log_text,
    mask_stored_card_numbers,
    masked_fields,
)
from pipeline.models import Customer, Deal, Touch
from tests.factories import CustomerFactory, DealFactory, TouchFactory

VISA = "4111 1111 1111 1111"
FULL = "4111111111111111"
OUR_APPS = ("pipeline", "billing", "receivables", "audits")

# (what, as typed, last 4): each is masked to "•••• <last 4>".
FORMATS = [
    ("16 digits", "4111111111111111", "1111"),
    ("4-4-4-4 spaces", "4111 1111 1111 1111", "1111"),
    ("dashes", "4111-1111-1111-1111", "1111"),
    ("dots", "4111.1111.1111.1111", "1111"),
    ("two spaces", "4111  1111  1111  1111", "1111"),
    ("three spaces", "4111   1111   1111   1111", "1111"),
    ("mixed space counts", "4111 1111  1111   1111", "1111"),
    ("underscores", "4111_1111_1111_1111", "1111"),
    ("slashes", "4111/1111/1111/1111", "1111"),
    ("backslashes", "4111\\1111\\1111\\1111", "1111"),
    ("spaced dashes", "4111 - 1111 - 1111 - 1111", "1111"),
    ("no-break spaces", "4111\u00a01111\u00a01111\u00a01111", "1111"),
    ("narrow no-break spaces", "4111\u202f1111\u202f1111\u202f1111", "1111"),
    ("thin spaces", "4111\u20091111\u20091111\u20091111", "1111"),
    ("figure spaces", "4111\u20071111\u20071111\u20071111", "1111"),
    ("ideographic spaces", "4111\u30001111\u30001111\u30001111", "1111"),
    ("zero-width spaces", "4111\u200b1111\u200b1111\u200b1111", "1111"),
    ("tabs", "4111\t1111\t1111\t1111", "1111"),
    ("en dashes", "4111\u20131111\u20131111\u20131111", "1111"),
    ("fullwidth digits", "４１１１１１１１１１１１１１１１", "1111"),
    ("fullwidth digits, fullwidth hyphens", "４１１１－１１１１－１１１１－１１１１", "1111"),
    (
        "fullwidth digits, ideographic spaces",
        "４１１１\u3000１１１１\u3000１１１１\u3000１１１１",
        "1111",
    ),
    ("Arabic-Indic digits", "٤١١١ ١١١١ ١١١١ ١١١١", "1111"),
    ("digit by digit", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "1111"),
    ("Amex 15 digits", "378282246310005", "0005"),
    ("Amex 4-6-5", "3782 822463 10005", "0005"),
    ("Mastercard", "5555 5555 5555 4444", "4444"),
    ("Discover with dashes", "6011-0009-9013-9424", "9424"),
    ("13-digit Visa", "4222222222222", "2222"),
    ("19 digits", "6304 0000 0000 0000 000", "0000"),
    ("12-digit account number", "000000000000", "0000"),
]

# (where, text, masked): a card number among other things.
CONTEXTS = [
    ("expiry after it", "4111 1111 1111 1111 12/28", "•••• 1111 12/28"),
    (
        "expiry and CVV after it",
        "card 4111 1111 1111 1111 12/28 cvv 123",
        "card •••• 1111 12/28 cvv 123",
    ),
    ("expiry without a slash", "4111111111111111 1228", "•••• 1111 1228"),
    ("expiry glued by slashes", "4111111111111111/1228/123", "•••• 1111/1228/123"),
    ("expiry glued to the digits", "41111111111111111228", "•••• 11111228"),
    ("a date before it", "2026-11-22 4111 1111 1111 1111", "2026-11-22 •••• 1111"),
    ("a number before it", "ref 12 4111 1111 1111 1111", "ref 12 •••• 1111"),
    ("two cards", f"{VISA} and 5555-5555-5555-4444", "•••• 1111 and •••• 4444"),
    ("two cards in one run", f"{VISA} 5555 5555 5555 4444", "•••• 1111 •••• 4444"),
    ("a query string", f"GET /deals/?q={FULL}&page=2", "GET /deals/?q=•••• 1111&page=2"),
    ("a form-encoded query", "/deals/?q=4111+1111+1111+1111", "/deals/?q=•••• 1111"),
    ("glued to letters", f"card:{FULL}x", "card:•••• 1111x"),
    ("in brackets", f"({VISA})", "(•••• 1111)"),
    ("across a sentence", f"She read me {VISA}.", "She read me •••• 1111."),
    ("on its own line", f"notes\n{VISA}\nthanks", "notes\n•••• 1111\nthanks"),
    (
        "a Python repr",
        f"ValueError: invalid literal: '{FULL}'",
        "ValueError: invalid literal: '•••• 1111'",
    ),
]

NOT_CARDS = [
    "Call +1 555 0100 2345",
    "+44 20 7946 0958",
    "(555) 010-0234 ext 12",
    "Order 1234567890123",
    "12345678901",
    "4111 1111 1111 1112",
    "4111111111111112",
    "2026-11-22",
    "22/11/2026 10:30",
    "2026.11.22",
    "$12,345,678.90",
    "1,000,000.00",
    "Invoice 12345",
    "ISBN 978-3-16-148410-0",
    "192.168.100.200",
    "IBAN DE89 3704 0044 0532 0130 00",
    "•••• 1111",
    "",
]


@pytest.mark.parametrize(("what", "number", "last4"), FORMATS, ids=[row[0] for row in FORMATS])
def test_card_numbers_are_masked_to_their_last_four_in_every_format(what, number, last4):
    assert mask_card_numbers(f"Card: {number}, thanks") == f"Card: •••• {last4}, thanks"


@pytest.mark.parametrize(("where", "text", "masked"), CONTEXTS, ids=[row[0] for row in CONTEXTS])
def test_card_numbers_are_masked_in_every_context(where, text, masked):
    assert mask_card_numbers(text) == masked


@pytest.mark.parametrize("text", NOT_CARDS)
def test_other_numbers_are_left_alone(text):
    assert mask_card_numbers(text) == text


def test_masking_twice_changes_nothing_more():
    for *_, masked in CONTEXTS:
        assert mask_card_numbers(masked) == masked


def test_a_huge_run_of_digits_is_masked_quickly_and_whole():
    assert mask_card_numbers("x" + "7" * 131_072) == "x•••• 7777"


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_json_is_masked_string_by_string_keys_included():
    document = {"reason": f"card {VISA}", FULL: [1, {"deep": ["4111.1111.1111.1111"]}], "n": 5}
    assert mask_json(document) == {
        "reason": "card •••• 1111",
        "•••• 1111": [1, {"deep": ["•••• 1111"]}],
        "n": 5,
    }


# --- Every text field of every model -----------------------------------------------


def _text_fields():
    for label in OUR_APPS:
        for model in apps.get_app_config(label).get_models():
            for field in text_fields(model):
                yield model, field


def test_every_text_field_of_our_models_is_masked_or_deliberately_left():
    undecided = [
        f"{model._meta.label}.{field.name}"
        for model, field in _text_fields()
        if field not in masked_fields(model)
        and not field.choices
        and f"{model._meta.label}.{field.name}" not in UNMASKED
    ]
    assert undecided == [], "mask these fields or list them in card_scan.UNMASKED with a reason"


MASKED = [
    (model, field)
    for label in OUR_APPS
    for model in apps.get_app_config(label).get_models()
    for field in masked_fields(model)
]


@pytest.mark.parametrize(
    ("model", "field"), MASKED, ids=[f"{m._meta.label}.{f.name}" for m, f in MASKED]
)
def test_every_masked_field_masks_what_it_writes(model, field):
    value = {"said": f"card {VISA}"} if isinstance(field, models.JSONField) else f"card {VISA}"
    prepared = field.get_db_prep_save(value, connection)
    assert FULL not in str(prepared).replace(" ", "") and "1111" in str(prepared)


@pytest.mark.django_db
def test_every_masked_column_of_the_demo_masks_a_card_number_written_with_update(settings):
    """One row of every model (the demo has them all); each column in turn gets a card."""
    settings.DEBUG = True  # seed_demo refuses otherwise
    call_command("seed_demo", stdout=io.StringIO())
    missing, leaked, constrained = [], [], []
    for model, field in MASKED:
        rows = models.QuerySet(model)  # the base queryset: ledgers refuse update() on theirs
        pk = rows.values_list("pk", flat=True).first()
        if pk is None:
            missing.append(model._meta.label)
            continue
        value = {"said": f"card {VISA}"} if isinstance(field, models.JSONField) else f"x {VISA}"
        try:
            with transaction.atomic():
                rows.filter(pk=pk).update(**{field.attname: value})
        except IntegrityError:
            # A column a check constraint ties to others (a decision's reason
            # needs a decision): the field-level test above covers its masking.
            constrained.append(f"{model._meta.label}.{field.name}")
            continue
        stored = rows.filter(pk=pk).values_list(field.attname, flat=True).get()
        if "1111 1111" in str(stored) or "•••• 1111" not in str(stored):
            leaked.append(f"{model._meta.label}.{field.name}: {stored!r}")
    assert leaked == []
    assert constrained == ["audits.Audit.decision_reason"]
    # The demo has no digest sent, no webhook, no leaver, no change of terms, no merge,
    # no voided invoice and no refund.
    assert set(missing) <= {
        "pipeline.CustomerMerge",
        "reminders.ReminderDigest",
        "billing.WebhookEvent",
        "pipeline.Reassignment",
        "pipeline.TermsChange",
        "billing.CreditNote",
        "billing.Refund",
    }, missing


@pytest.mark.django_db
def test_a_customers_name_company_and_phone_are_masked_when_saved(rep_client):
    response = rep_client.post(
        "/customers/new/",
        {
            "name": f"Ann {VISA}",
            "company": "4111.1111.1111.1111",
            "phone": "4111  1111  1111  1111",
        },
    )
    assert response.status_code in (200, 302)
    customer = Customer.objects.get()
    assert (customer.name, customer.company, customer.phone) == (
        "Ann •••• 1111",
        "•••• 1111",
        "•••• 1111",
    )


@pytest.mark.django_db
def test_a_card_number_in_a_touch_or_note_never_reaches_the_database(rep):
    deal = DealFactory(rep=rep, notes=f"paid with {VISA} 12/28")
    touch = TouchFactory(deal=deal, discussed="She read me ４１１１ １１１１ １１１１ １１１１")
    deal.refresh_from_db()
    touch.refresh_from_db()
    assert deal.notes.endswith("•••• 1111 12/28")
    assert touch.discussed == "She read me •••• 1111"


@pytest.mark.django_db
def test_masking_also_covers_queryset_update(customer):
    Customer.objects.filter(pk=customer.pk).update(plans_notes="card 4111.1111.1111.1111")
    customer.refresh_from_db()
    assert customer.plans_notes == "card •••• 1111"


@pytest.mark.django_db
def test_masking_covers_bulk_create_and_bulk_update(rep, deal):
    Customer.objects.bulk_create(
        [Customer(name=f"Bulk {VISA}", phone="4111_1111_1111_1111", owner=rep)]
    )
    bulk = Customer.objects.get(name__startswith="Bulk")
    assert (bulk.name, bulk.phone) == ("Bulk •••• 1111", "•••• 1111")
    touch = Touch(
        deal=deal,
        kind="call",
        discussed=f"{VISA}",
        agreed_to="x",
        next_step="y",
        next_step_date=date.today(),
        author=rep,
    )
    Touch.objects.bulk_create([touch])
    assert Touch.objects.get().discussed == "•••• 1111"
    deal.next_step = f"charge {FULL}"
    Deal.objects.bulk_update([deal], ["next_step"])
    assert Deal.objects.values_list("next_step", flat=True).get(pk=deal.pk) == "charge •••• 1111"


# --- The data migration and the scanner ---------------------------------------------


def _plant(table: str, column: str, pk: int, value: str) -> None:
    """Write ``value`` behind the fields' back, as rows written before masking were."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, pk])  # noqa: S608


@pytest.fixture
def planted(rep):
    """Full numbers stored before this masker: old columns, missed formats, JSON."""
    customer = CustomerFactory(owner=rep)
    deal = DealFactory(rep=rep, customer=customer)
    event = WebhookEvent.objects.create(event_id="evt_x", type="payment.bounced", payload={})
    _plant("pipeline_customer", "company", customer.pk, "Acme 4111 1111 1111 1111")
    _plant("pipeline_deal", "notes", deal.pk, "paid 4111.1111.1111.1111 12/28")
    _plant("billing_webhookevent", "payload", event.pk, '{"data": {"reason": "4111111111111111"}}')
    return customer, deal, event


@pytest.mark.django_db
@pytest.mark.stores_card_numbers
def test_the_scanner_finds_every_planted_number_and_prints_it_masked(planted):
    customer, deal, event = planted
    found = {(f.table, f.column, f.pk) for f in find_card_numbers()}
    assert found == {
        ("pipeline_customer", "company", customer.pk),
        ("pipeline_deal", "notes", deal.pk),
        ("billing_webhookevent", "payload", event.pk),
    }
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("find_card_numbers", stdout=out)
    printed = out.getvalue()
    assert f"pipeline_customer.company pk={customer.pk}: Acme •••• 1111" in printed
    assert f"pipeline_deal.notes pk={deal.pk}: paid •••• 1111 12/28" in printed
    assert printed.strip().splitlines()[-1].startswith("3 stored value(s) with a card number")
    assert "1111 1111" not in printed and "1111.1111" not in printed and FULL not in printed


@pytest.mark.django_db
def test_the_data_migration_masks_what_is_already_stored(planted):
    customer, deal, event = planted
    changed = sum(mask_stored_card_numbers(apps, label) for label in OUR_APPS)
    assert changed == 3
    customer.refresh_from_db()
    deal.refresh_from_db()
    event.refresh_from_db()
    assert customer.company == "Acme •••• 1111"
    assert deal.notes == "paid •••• 1111 12/28"
    assert event.payload == {"data": {"reason": "•••• 1111"}}
    out = io.StringIO()
    call_command("find_card_numbers", stdout=out)
    assert (
        out.getvalue().strip() == "0 stored value(s) with a card number in every table (default)."
    )


# --- Logs ----------------------------------------------------------------------------


def _configured_handlers(logger_name: str) -> list[logging.Handler]:
    """The handlers settings.LOGGING gave a logger (not pytest's capturing ones)."""
    logger = logging.getLogger(logger_name)
    return [h for h in logger.handlers if not type(h).__module__.startswith("_pytest")]


def _written_by(logger_name: str, emit) -> str:
    """What the handlers configured in settings.LOGGING write for ``logger_name``."""
    handlers = _configured_handlers(logger_name)
    assert handlers, f"{logger_name} has no handler"
    streams = []
    for handler in handlers:
        stream = io.StringIO()
        streams.append((handler, handler.setStream(stream)))
    try:
        emit(logging.getLogger(logger_name))
    finally:
        written = "".join(handler.stream.getvalue() for handler, _ in streams)
        for handler, old in streams:
            handler.setStream(old)
    return written


def test_a_percent_encoded_card_number_in_a_log_line_is_masked():
    line = '"GET /deals/?q=4111%201111%201111%201111 HTTP/1.1" 200'
    assert mask_log_text(line) == '"GET /deals/?q=•••• 1111 HTTP/1.1" 200'
    assert mask_log_text("GET /deals/?q=caf%C3%A9 12") == "GET /deals/?q=caf%C3%A9 12"


def test_every_configured_handler_masks_whole_records():
    assert logging.getLogger("celery").propagate  # to the root's handler
    for name in ("", "django", "django.server", "django.request"):
        assert _configured_handlers(name), name
        for handler in _configured_handlers(name):
            assert isinstance(handler.formatter, MaskingFormatter), (name, handler)
            assert any(isinstance(f, MaskCardNumbersFilter) for f in handler.filters)


def test_the_dev_servers_access_line_masks_a_searched_card_number():
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.request = None
    handler.client_address = ("127.0.0.1", 5000)
    written = _written_by(
        "django.server",
        lambda _: handler.log_message('"%s" %s %s', f"GET /deals/?q={FULL} HTTP/1.1", "200", "512"),
    )
    assert '"GET /deals/?q=•••• 1111 HTTP/1.1" 200 512' in written
    assert FULL not in written


def test_an_exception_quoting_a_card_number_is_logged_masked_with_its_traceback():
    def fail(logger):
        try:
            int(f"{VISA} 12/28")
        except ValueError:
            logger.exception("Internal Server Error: /deals/?q=%s", FULL)

    written = _written_by("django.request", fail)
    assert "Internal Server Error: /deals/?q=•••• 1111" in written
    assert "ValueError: invalid literal for int() with base 10: '•••• 1111 12/28'" in written
    assert "Traceback" in written and "1111 1111" not in written and FULL not in written


def test_celerys_own_handlers_are_made_to_mask():
    logger = logging.getLogger("tests.celery_worker")
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    logger.addHandler(handler)
    try:
        after_setup_logger.send(sender=None, logger=logger, loglevel=logging.INFO)
        logger.error("Task pipeline.x raised: ValueError('%s')", VISA)
    finally:
        logger.removeHandler(handler)
    assert handler.stream.getvalue() == "[ERROR] Task pipeline.x raised: ValueError('•••• 1111')\n"


# Loading the tasks runs Celery's Django fixup, whose system checks ask SQLite
# whether it has JSON (a query): alone, or first in a worker, that needs the db.
@pytest.mark.django_db
def test_celery_tasks_take_ids_only():
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if name.split(".")[0] in OUR_APPS}
    assert ours
    for name, task in ours.items():
        hints = {k: v for k, v in task.run.__annotations__.items() if k != "return"}
        for argument, hint in hints.items():
            assert hint in (int, int | None) or argument == "recipient", (name, argument)


def test_gunicorns_access_log_masks_the_query_string(tmp_path):
    settings = runpy.run_path(str(django_settings.BASE_DIR / "config" / "gunicorn.conf.py"))
    cfg = Config()
    for key in ("access_log_format", "logger_class", "bind", "workers"):
        cfg.set(key, settings[key])
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("errorlog", str(tmp_path / "error.log"))
    logger = cfg.logger_class(cfg)

    class Response:
        status, sent, headers = "200 OK", 512, []

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/deals/?q={VISA.replace(' ', '+')}",
        "PATH_INFO": "/deals/",
        "QUERY_STRING": f"q={FULL}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_REFERER": f"https://cleared.example/deals/?q={FULL}",
    }
    logger.access(Response(), [], environ, timedelta(milliseconds=12))
    logger.error("Error handling request /deals/?q=%s", FULL)
    for handler in logger.access_log.handlers + logger.error_log.handlers:
        handler.flush()
    access = (tmp_path / "access.log").read_text()
    assert (
        '"GET /deals/?q=•••• 1111 HTTP/1.1" 200 512 "https://cleared.example/deals/?q=•••• 1111"'
        in access
    )
    assert "/deals/?q=•••• 1111" in (tmp_path / "error.log").read_text()


def test_card_numbers_are_masked_in_logs(caplog):
    logger = logging.getLogger("tests.masking")
    logger.addFilter(MaskCardNumbersFilter())
    with caplog.at_level(logging.INFO, logger="tests.masking"):
        logger.info("customer gave %s", VISA)
    assert "4111 1111 1111 1111" not in caplog.text
    assert "•••• 1111" in caplog.text


def test_amounts_are_not_touched_by_masking():
    assert mask_card_numbers(f"{Decimal('1234567.89')}") == "1234567.89"


@pytest.mark.django_db
@pytest.mark.stores_card_numbers
def test_the_after_test_scan_finds_what_the_test_wrote(planted):
    """PostgreSQL names the tables the test wrote; elsewhere (None) every table is read."""
    customer, deal, event = planted
    found = find_card_numbers(tables=tables_written_in_this_transaction())
    assert {(f.table, f.pk) for f in found} == {
        ("pipeline_customer", customer.pk),
        ("pipeline_deal", deal.pk),
        ("billing_webhookevent", event.pk),
    }


@pytest.mark.needs_postgres("pg_stat_get_xact_tuples_* are PostgreSQL's (elsewhere: None)")
@pytest.mark.django_db
def test_the_after_test_scan_looks_at_the_tables_the_test_wrote(rep):
    CustomerFactory(owner=rep)
    written = tables_written_in_this_transaction()
    assert {"pipeline_user", "pipeline_customer"} <= written
    assert "billing_payment" not in written
