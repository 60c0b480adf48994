"""Queries compiled once (``pipeline.compiled``): the same rows as the ORM's own
query, whatever the values and the batch's length, with the SQL built once."""

import datetime
from decimal import Decimal

import pytest
from django.db import DataError, transaction
from django.db.models import DateTimeField, Exists, F, OuterRef
from django.utils import timezone

from pipeline.compiled import Compiled, InBatch, Slot, bulk_insert
from pipeline.models import Deal, Role, Touch
from reminders.models import DealSchedule, Reminder, ReminderKind, ReminderQueue, ReminderState
from tests.factories import DealFactory, TouchFactory, UserFactory

pytestmark = pytest.mark.django_db


def _deals_query(built: list):
    def build():
        built.append(1)
        return (
            Deal.objects.order_by("pk")
            .filter(InBatch(F("pk"), "ids"), promised_at__lt=Slot("before", DateTimeField()))
            .annotate(touched=Exists(Touch.objects.filter(deal_id=OuterRef("pk"))))
            .values_list("pk", "amount", "promised_at", "touched", "customer__name")
        )

    return build


def test_rows_are_the_orms_rows_for_any_batch_and_moment_with_the_sql_built_once():
    now, rep = timezone.now(), UserFactory(role=Role.REP)
    deals = [
        DealFactory(
            rep=rep,
            amount=Decimal("12.5") * (day + 1),
            promised_at=now - datetime.timedelta(days=day),
        )
        for day in range(6)
    ]
    TouchFactory(deal=deals[1])
    TouchFactory(deal=deals[4])
    built, later = [], now + datetime.timedelta(seconds=1)
    query = Compiled(_deals_query(built))
    for ids, before in [
        ([d.pk for d in deals[:2]], now),
        ([d.pk for d in deals], now - datetime.timedelta(days=2, hours=1)),
        ([deals[5].pk, deals[0].pk, deals[5].pk, 10**9], now + datetime.timedelta(days=1)),
        ([], now),
    ]:
        expected = list(
            Deal.objects.order_by("pk")
            .filter(pk__in=ids, promised_at__lt=before)
            .annotate(touched=Exists(Touch.objects.filter(deal_id=OuterRef("pk"))))
            .values_list("pk", "amount", "promised_at", "touched", "customer__name")
        ) if ids else []  # fmt: skip
        rows = query.rows(ids=ids, before=before)
        assert rows == expected
        for _pk, amount, promised_at, touched, _name in rows:
            assert isinstance(amount, Decimal)
            assert promised_at.tzinfo is not None
            assert type(touched) is bool
    assert {row[0] for row in query.rows(ids=[d.pk for d in deals], before=later)} == {
        d.pk for d in deals
    }
    assert len(built) == 2  # once to know the model's database, once to compile


def test_each_key_is_its_own_compiled_query():
    deal = DealFactory(rep=UserFactory(role=Role.REP))
    built = []

    def build(stage):
        built.append(stage)
        return Deal.objects.filter(InBatch(F("pk"), "ids"), stage=stage).values_list("pk")

    query = Compiled(build)
    assert query.rows(deal.stage, key=deal.stage, ids=[deal.pk]) == [(deal.pk,)]
    assert query.rows("lost", key="lost", ids=[deal.pk]) == []
    assert query.rows(deal.stage, key=deal.stage, ids=[deal.pk]) == [(deal.pk,)]
    assert built.count("lost") == 1 and built.count(deal.stage) == 2


def test_a_batch_holds_whole_numbers_only():
    deal = DealFactory(rep=UserFactory(role=Role.REP))
    query = Compiled(lambda: Deal.objects.filter(InBatch(F("pk"), "ids")).values_list("pk"))
    assert query.rows(ids=[str(deal.pk)]) == [(deal.pk,)]
    with pytest.raises(ValueError):
        query.rows(ids=[f"{deal.pk}) OR (1=1"])


def _reminder_rows(deal_ids):
    fields = [f.attname for f in Reminder._meta.concrete_fields if f.attname != "id"]
    return sorted(Reminder.objects.filter(deal_id__in=deal_ids).values_list(*fields))


def test_bulk_insert_writes_what_bulk_create_writes_and_skips_what_exists():
    rep, now = UserFactory(role=Role.REP), timezone.now()
    first, second = DealFactory(rep=rep), DealFactory(rep=rep)

    def made(deal):
        return [
            Reminder(
                deal_id=deal.pk, kind=ReminderKind.CHECK_IN, occurrence="once", owner_id=rep.pk,
                why="Card 4111 1111 1111 1111 on the call", due_at=now, created_at=now,
                updated_at=now,
            ),
            Reminder(
                deal_id=deal.pk, kind=ReminderKind.AUDIT_DUE, occurrence="a1", owner_id=None,
                queue=ReminderQueue.AUDIT, why="Call window", due_at=now, created_at=now,
                updated_at=now, state=ReminderState.DUE,
            ),
        ]  # fmt: skip

    Reminder.objects.bulk_create(made(first))
    bulk_insert(Reminder, made(second))
    by_orm, by_insert = _reminder_rows([first.pk]), _reminder_rows([second.pk])
    assert [row[1:] for row in by_insert] == [row[1:] for row in by_orm]  # all but the deal
    assert "4111 1111 1111 1111" not in str(by_insert)  # masked as the field masks it
    again = made(second)
    again[0].why = "A second time"
    bulk_insert(Reminder, again)  # the same occurrences: skipped, never twice
    assert _reminder_rows([second.pk]) == by_insert


def test_bulk_insert_upserts_on_the_unique_fields():
    rep, now = UserFactory(role=Role.REP), timezone.now()
    first, second = DealFactory(rep=rep), DealFactory(rep=rep)
    DealSchedule.objects.update_or_create(deal_id=first.pk, defaults={"next_at": now})
    later = now + datetime.timedelta(hours=3)
    bulk_insert(
        DealSchedule,
        [DealSchedule(deal_id=first.pk, next_at=later), DealSchedule(deal_id=second.pk)],
        unique_fields=["deal"],
        update_fields=["next_at"],
    )
    assert dict(
        DealSchedule.objects.filter(deal_id__in=[first.pk, second.pk]).values_list(
            "deal_id", "next_at"
        )
    ) == {first.pk: later, second.pk: None}


@pytest.mark.needs_postgres("SQLite keeps a string of any length")
def test_bulk_insert_refuses_a_value_too_long_for_its_column_as_bulk_create_does():
    rep, now = UserFactory(role=Role.REP), timezone.now()
    deal = DealFactory(rep=rep)
    too_long = Reminder(
        deal_id=deal.pk, kind=ReminderKind.CHECK_IN, occurrence="x" * 65, owner_id=rep.pk,
        why="Call", due_at=now, created_at=now, updated_at=now,
    )  # fmt: skip
    with pytest.raises(DataError), transaction.atomic():
        Reminder.objects.bulk_create([too_long])
    with pytest.raises(DataError), transaction.atomic():
        bulk_insert(Reminder, [too_long])
    assert not Reminder.objects.filter(deal_id=deal.pk).exists()
