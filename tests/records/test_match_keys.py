"""The keys customers are matched by (pipeline/keys.py): kept by the database, read by index.

At a million deals (200,000 customers) an import of 200 rows took minutes when
each match computed the keys on every customer row; these tests hold the keys
to the database's columns and the lookups to their indexes.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboards.importing import read_rows
from pipeline import keys
from pipeline.models import Customer
from pipeline.sameness import (
    customer_matches,
    match_condition,
    matches_of,
    matching,
    typed_floor,
)
from pipeline.selectors import customers_by_contact, duplicates_among
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

TYPED = {
    "name": "Dana  WHITFIELD",
    "company": "whitfield dental",
    "email": " Dana@Whitfield.example ",
    "phone": "+1 (555) 300-0001",
}


def _keys(customer: Customer) -> tuple[str, str, str, str]:
    row = Customer.objects.values_list("name_key", "company_key", "email_key", "phone_key")
    return row.get(pk=customer.pk)


def test_the_database_keeps_a_customers_keys_as_python_computes_them_from_what_is_typed(rep):
    customer = CustomerFactory(owner=rep, **{k: v.strip() for k, v in TYPED.items()})
    assert _keys(customer) == (
        keys.name_key(TYPED["name"]),
        keys.company_key(TYPED["company"]),
        keys.email_key(TYPED["email"]),
        keys.phone_key(TYPED["phone"]),
    )
    assert _keys(customer) == (
        "danawhitfield",
        "whitfielddental",
        "dana@whitfield.example",
        "15553000001",
    )


def test_the_keys_follow_a_change_that_bypasses_save(rep, dana):
    Customer.objects.filter(pk=dana.pk).update(name="D. Whitfield", phone="(555) 300-0002")
    assert _keys(dana)[0] == "d.whitfield" and _keys(dana)[3] == "5553000002"


def test_the_keys_of_customers_created_in_bulk_are_kept_too(rep):
    Customer.objects.bulk_create([Customer(owner=rep, name="Bo Lind", phone="555-300-0003")])
    assert Customer.objects.get(name_key="bolind").phone_key == "5553000003"


def test_the_keys_are_not_in_the_change_history(rep, dana):
    history = {f.name for f in Customer.history.model._meta.fields}
    assert "name" in history
    assert not history & {"name_key", "company_key", "email_key", "phone_key"}


def test_matching_reads_the_stored_keys_and_runs_no_function_on_the_rows(rep, dana):
    copy = CustomerFactory(owner=rep, name="Dana Whitfield", company="", phone="555 300 0001")
    with CaptureQueriesContext(connection) as captured:
        assert customer_matches(rep, **TYPED).visible == [dana, copy]
        assert typed_floor(**TYPED) is not None
        assert list(matches_of(copy)) == [dana]
        duplicates_among(Customer.objects.visible_to(rep), [dana])
        customers_by_contact(Customer.objects.all(), email="DANA@whitfield.example").count()
    sql = " ".join(q["sql"] for q in captured.captured_queries).upper()
    assert "REPLACE(" not in sql and "LOWER(" not in sql


@pytest.mark.needs_postgres("EXPLAIN of PostgreSQL's plans")
def test_on_postgresql_each_key_of_a_match_is_an_index_lookup(rep, dana):
    # The planner picks a sequential scan of a small test table; forbidding it
    # shows whether the match *can* be answered from the indexes at all.
    found = Customer.objects.filter(match_condition(**TYPED)).only("pk")
    sql, params = found.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    for index in ("customer_name_key", "customer_email_key", "customer_phone_key"):
        assert index in plan, plan


def _csv(*rows: str) -> str:
    day = (timezone.localdate() + timedelta(days=10)).isoformat()
    header = (
        "customer,phone,title,amount,payment_option,expected_delivery_date,next_step,next_step_date"
    )
    return "\n".join([header, *(f"{row},Order,100.00,upfront,{day},Call,{day}" for row in rows)])


def test_an_imported_row_naming_a_customer_again_in_any_case_is_that_customer(rep, dana):
    rows = read_rows(rep, _csv("dana whitfield,555 300 0001", "Someone New,555 300 0009"))
    assert rows[0].customer == dana and rows[0].matches is None
    assert rows[1].customer is None and not rows[1].matches


def test_an_imported_row_does_not_name_a_customer_the_importer_may_not_see(other_rep, dana):
    [row] = read_rows(other_rep, _csv("Dana Whitfield,555 300 0001"))
    assert row.customer is None and row.matches.hidden and not row.matches.visible


def test_an_import_reads_only_the_customers_its_rows_may_name_not_every_customer(rep, dana):
    CustomerFactory.create_batch(30, owner=rep)
    made = []

    def count(sender, instance, **kwargs):
        made.append(instance.pk)

    post_init.connect(count, sender=Customer)
    try:
        rows = read_rows(rep, _csv("Dana Whitfield,555 300 0001", "Someone New,555 300 0009"))
    finally:
        post_init.disconnect(count, sender=Customer)
    assert rows[0].customer == dana
    assert set(made) == {dana.pk}  # the customer named, and nobody else of the 31


TYPINGS = [
    TYPED,
    {"name": "dana whitfield"},  # a name alone: any company
    {"name": "Dana Whitfield", "company": "Acme"},  # another company: not Dana
    {"name": "Dana Whitfield", "company": "WHITFIELD  dental"},
    {"company": "Whitfield Dental"},  # a company alone matches nothing
    {"email": "DANA@whitfield.example"},
    {"phone": "555-300-0001"},
    {"phone": "12345"},  # too few digits to be a phone's key
    {"name": "x' OR '1'='1", "email": "' OR 1=1 --", "phone": "1); DROP TABLE x; --555300"},
    {},
]


@pytest.mark.parametrize("typed", TYPINGS)
def test_the_compiled_match_finds_exactly_what_the_rule_finds(rep, other_rep, dana, typed):
    CustomerFactory(owner=rep, name="Dana Whitfield", company="", phone="555 300 0009")
    CustomerFactory(owner=other_rep, name="Bo Lind", email="dana@whitfield.example", phone="")
    CustomerFactory(owner=rep, name="Cy Moss", company="Acme", phone="(555) 300-0001")
    by_rule = Customer.objects.filter(match_condition(**typed))
    by_rule = by_rule.values_list("pk", "standing", "name")
    # Twice: the second run reuses the compiled SQL with its values filled anew.
    assert sorted(matching(**typed)) == sorted(by_rule)
    assert sorted(matching(**typed)) == sorted(by_rule)


def test_a_customer_matching_nobody_costs_one_query_to_check(rep, dana):
    typed = {"name": "Someone New", "company": "Elsewhere", "phone": "555 999 0000"}
    with CaptureQueriesContext(connection) as captured:
        assert not customer_matches(rep, **typed)
        assert typed_floor(**typed) is None
    assert len(captured.captured_queries) == 2  # one match lookup each, nothing built on it
