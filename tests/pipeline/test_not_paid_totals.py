"""The Not paid yet totals kept by the database equal a recount after any writes
(issue 23): services, raw updates, the admin, concurrent writers; and the
board's totals read from them equal the full count, at every boundary."""

import datetime
import zoneinfo
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import F, QuerySet
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import services as billing
from dashboards.board import BUCKETS
from dashboards.totals import board_totals, count_totals
from pipeline import services
from pipeline.models import Deal, Role
from pipeline.not_paid import LONG_AGO, NotPaidTotal, drift, fold, fold_days, rebuild
from pipeline.stages import AuditFlag, LostReason, Stage
from pipeline.terms import PaymentOption
from tests.conftest import _client_for
from tests.factories import CustomerFactory, DealFactory, UserFactory
from tests.race import race

STAGES = [stage.value for stage in Stage]
KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")  # +05:30: its midnights are not UTC hours

write = st.one_of(
    st.tuples(
        st.just("promise"),
        st.integers(0, 1),
        st.integers(100, 500_000),
        st.integers(0, 200),
        st.integers(0, 1439),
    ),
    st.tuples(st.just("move"), st.integers(0, 30), st.sampled_from(STAGES)),
    st.tuples(st.just("pay"), st.integers(0, 30), st.integers(1, 100), st.sampled_from("pcb")),
    st.tuples(st.just("amount"), st.integers(0, 30), st.integers(-5000, 5000)),
    st.tuples(st.just("handover"), st.integers(0, 30), st.integers(0, 1)),
    st.tuples(st.just("dispute"), st.integers(0, 30)),
    st.tuples(st.just("restamp"), st.integers(0, 30), st.integers(0, 200 * 1440)),
)


def _apply(step, reps, customers, manager) -> None:
    kind, *args = step
    deals = list(Deal.objects.order_by("pk").values_list("pk", flat=True))
    if kind == "promise":
        who, cents, days, minutes = args
        DealFactory(
            rep=reps[who],
            customer=customers[who],
            amount=Decimal(cents) / 100,
            payment_option=PaymentOption.INVOICE,
            promised_at=timezone.now() - datetime.timedelta(days=days, minutes=minutes),
        )
        return
    if not deals:
        return
    deal = Deal.objects.get(pk=deals[args[0] % len(deals)])
    if kind == "move":
        services.deal_move(
            deal_id=deal.pk,
            to_stage=args[1],
            actor=manager,
            reason="Moved in a test",
            lost_reason=LostReason.OTHER,
        )
    elif kind == "pay":
        share, then = args[1], args[2]
        amount = max(Decimal("0.01"), (deal.amount - deal.received_amount) * share / 100)
        payment = billing.payment_record(
            deal_id=deal.pk,
            recorded_by=manager,
            kind="payment",
            method="check",
            amount=amount.quantize(Decimal("0.01")),
        )
        if then in "cb":
            billing.payment_clear(payment_id=payment.pk, actor=manager)
        if then == "b":
            billing.payment_bounce(payment_id=payment.pk, actor=manager, reason="Returned")
    elif kind == "amount":  # a raw write, as a shell or a data fix would make it
        Deal.objects.filter(pk=deal.pk).update(amount=F("amount") + Decimal(args[1]))
    elif kind == "handover":
        Deal.objects.filter(pk=deal.pk).update(rep=reps[args[1]])
    elif kind == "dispute":
        Deal.objects.filter(pk=deal.pk).update(
            audit_flag=AuditFlag.DISPUTED, audit_flag_at=timezone.now()
        )
    elif kind == "restamp":
        Deal.objects.filter(pk=deal.pk).update(
            stage_changed_at=timezone.now() - datetime.timedelta(minutes=args[1])
        )


@pytest.mark.django_db
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(write, min_size=1, max_size=12))
def test_the_kept_totals_equal_a_recount_after_any_sequence_of_writes(
    steps, manager, rep, teammate
):
    reps = [rep, teammate]
    with transaction.atomic():
        customers = [CustomerFactory(owner=who) for who in reps]
        for step in steps:
            try:
                with transaction.atomic():  # a refused write leaves nothing behind
                    _apply(step, reps, customers, manager)
            except Exception:  # noqa: BLE001, S112 - an illegal move or payment is refused; the totals are what is tested
                continue
        assert drift() == []
        with timezone.override(KOLKATA):
            assert board_totals(manager) == count_totals(manager)
        transaction.set_rollback(True)


def _deals_on_every_boundary(rep, now, zone, rotting_days) -> None:
    """Deals a second either side of each bucket's midnight (a ``zone`` viewer's, at
    ``now``) and of each stage's rotting limit."""
    today = now.astimezone(zone).date()
    for days in (30, 60, 90):
        midnight = datetime.datetime.combine(
            today - datetime.timedelta(days=days), datetime.time.min, tzinfo=zone
        )
        for second in (-1, 0, 1):
            DealFactory(rep=rep, promised_at=midnight + datetime.timedelta(seconds=second))
    for stage, days in rotting_days.items():
        for second in (-1, 1):
            moved = now - datetime.timedelta(days=days, seconds=second)
            DealFactory(rep=rep, stage=stage, stage_changed_at=moved, promised_at=moved)


@pytest.mark.django_db
def test_the_board_totals_are_exact_on_each_side_of_every_boundary(manager, rep, settings):
    """A +05:30 viewer's midnights and every rotting limit, a second either side:
    the summary's edge days are counted from the deals."""
    now = timezone.now()
    _deals_on_every_boundary(rep, now, KOLKATA, settings.CLEARED_ROTTING_DAYS)
    with timezone.override(KOLKATA):
        kept, counted = board_totals(manager, now=now), count_totals(manager, now=now)
    assert kept == counted
    assert [row["count"] for row in kept.by_bucket] != [0, 0, 0, 0]
    assert kept.rotting_count == len(settings.CLEARED_ROTTING_DAYS)


@pytest.mark.django_db
def test_a_rep_sees_the_totals_of_their_own_deals_only(rep, other_rep):
    DealFactory(rep=rep, amount=Decimal("400.00"))
    DealFactory(rep=other_rep, amount=Decimal("900.00"))
    assert board_totals(rep).outstanding == Decimal("400.00")
    assert board_totals(other_rep).outstanding == Decimal("900.00")


def test_the_totals_query_compiled_once_a_team_reads_each_moment_afresh(
    manager, rep, teammate, monkeypatch, settings
):
    """The totals' SQL is compiled once per team; each read fills in its own day and
    moment: a read 40 days on, in another time zone, is exact on that day's boundaries."""
    now = timezone.now()
    later = now + datetime.timedelta(days=40)
    _deals_on_every_boundary(rep, now, datetime.UTC, settings.CLEARED_ROTTING_DAYS)
    _deals_on_every_boundary(teammate, later, KOLKATA, settings.CLEARED_ROTTING_DAYS)
    board_totals(manager, now=now)  # compiled here
    built = []  # the totals' query is a union of parts: building it again means compiling it
    real_union = QuerySet.union
    monkeypatch.setattr(QuerySet, "union", lambda *a, **k: built.append(1) or real_union(*a, **k))
    reads = []
    for zone, at in ((datetime.UTC, now), (KOLKATA, later), (datetime.UTC, now)):
        today = at.astimezone(zone).date()
        with timezone.override(zone):
            kept = board_totals(manager, today=today, now=at)
            assert built == []  # the compiled query, filled in
            assert kept == count_totals(manager, today=today, now=at)
        reads.append(kept)
    assert reads[0].rotting_count < reads[1].rotting_count  # 40 days on, more have rotted
    assert reads[0] == reads[2]


def test_a_compiled_totals_query_follows_the_team_as_it_changes(manager, rep, teammate):
    """The team is read when the query runs, not when it was compiled: a rep moved to
    another manager leaves the totals at once, and is on the new manager's."""
    DealFactory(rep=rep, amount=Decimal("400.00"))
    DealFactory(rep=teammate, amount=Decimal("900.00"))
    assert board_totals(manager).outstanding == Decimal("1300.00")
    teammate.manager = UserFactory(role=Role.MANAGER)
    teammate.save()
    assert board_totals(manager).outstanding == Decimal("400.00")
    assert board_totals(teammate.manager).outstanding == Decimal("900.00")
    assert board_totals(rep).outstanding == Decimal("400.00")


def test_an_auditor_reads_no_totals_and_an_operator_every_teams(auditor, rep, other_rep):
    DealFactory(rep=rep, amount=Decimal("400.00"))
    DealFactory(rep=other_rep, amount=Decimal("900.00"))
    totals = board_totals(auditor)
    assert (totals.count, totals.outstanding, totals.rotting_count) == (0, Decimal("0.00"), 0)
    operator = UserFactory(is_superuser=True, is_staff=True)
    assert board_totals(operator).outstanding == Decimal("1300.00")
    assert board_totals(operator) == count_totals(operator)


def _form_data(page) -> dict:
    """What the admin's change form posts back unchanged: its fields and its inlines'."""
    data = {}
    forms = [page.context["adminform"].form]
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        forms += formset.forms
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            if isinstance(value, datetime.datetime):  # the admin's date and time inputs
                local = timezone.localtime(value)
                data[form.add_prefix(name) + "_0"] = local.date().isoformat()
                data[form.add_prefix(name) + "_1"] = local.time().isoformat()
                continue
            data[form.add_prefix(name)] = value.pk if hasattr(value, "pk") else value
    return data


@pytest.mark.django_db
def test_an_admin_edit_of_a_deal_keeps_the_totals(manager, deal):
    """The admin's change form saves the deal outside the services: the triggers keep it."""
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client = _client_for(root)
    url = reverse("admin:pipeline_deal_change", args=[deal.pk])
    data = _form_data(client.get(url))
    data.update({"amount": "1234.56", "rep": manager.pk})
    response = client.post(url, data)
    assert response.status_code == 302, [
        (f.prefix, f.errors) for f in [response.context["adminform"].form]
    ] + [i.formset.errors for i in response.context["inline_admin_formsets"]]
    assert Deal.objects.get(pk=deal.pk).amount == Decimal("1234.56")
    assert drift() == []
    assert board_totals(manager).outstanding == Decimal("1234.56")


@pytest.mark.django_db
def test_check_exits_1_on_drift_and_rebuild_repairs_it(rep, capsys):
    DealFactory(rep=rep, amount=Decimal("500.00"))
    call_command("check_board_totals")
    NotPaidTotal.objects.filter(rep=rep).update(deals=F("deals") + 1)  # a write the triggers missed
    with pytest.raises(SystemExit) as exited:
        call_command("check_board_totals")
    assert exited.value.code == 1
    assert "drifted" in capsys.readouterr().out
    call_command("rebuild_board_totals")
    assert drift() == []
    assert rebuild() == 2  # one row per axis


@pytest.mark.django_db(transaction=True)
@pytest.mark.needs_postgres("concurrent writers on PostgreSQL row locks")
def test_concurrent_writers_never_lose_an_increment(manager, rep, teammate):
    customers = {who.pk: CustomerFactory(owner=who) for who in (rep, teammate)}
    deals = [DealFactory(rep=rep, amount=Decimal("1000.00")) for _ in range(4)]

    def promise(who):
        return lambda: services.deal_promise(
            rep=who,
            customer=customers[who.pk],
            title="Raced",
            amount=Decimal("100.00"),
            payment_option=PaymentOption.INVOICE,
            expected_delivery_date=timezone.localdate(),
            next_step="Call",
            next_step_date=timezone.localdate(),
        )

    def pay(deal):
        return lambda: billing.payment_record(
            deal_id=deal.pk,
            recorded_by=manager,
            kind="payment",
            method="check",
            amount=Decimal("10.00"),
        )

    def move(deal):
        return lambda: services.deal_move(
            deal_id=deal.pk, to_stage=Stage.LOST, actor=manager, lost_reason=LostReason.OTHER
        )

    results = race(
        promise(rep),
        promise(rep),
        promise(teammate),
        promise(rep),
        *map(pay, deals[:2]),
        *map(move, deals[2:]),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert drift() == []
    totals = board_totals(manager)
    assert totals.count == 4 + 2
    assert totals.outstanding == Decimal("400.00") + Decimal("2000.00")


@pytest.mark.django_db
def test_old_days_fold_into_one_row_and_the_totals_stay_exact(manager, rep, settings):
    old = [
        DealFactory(
            rep=rep,
            amount=Decimal("100.00"),
            promised_at=timezone.now() - datetime.timedelta(days=days),
        )
        for days in (150, 200, 300)
    ]
    for deal in old:
        Deal.objects.filter(pk=deal.pk).update(stage_changed_at=deal.promised_at)
    DealFactory(rep=rep, amount=Decimal("50.00"))
    assert NotPaidTotal.objects.filter(rep=rep).count() == 8  # 4 deals x 2 axes, each its own day
    fold()
    kept = NotPaidTotal.objects.filter(rep=rep)
    assert kept.count() == 4  # per axis: the folded row and today's
    assert kept.get(axis="promised", day=LONG_AGO).deals == 3
    assert drift() == []
    assert board_totals(manager) == count_totals(manager)
    # A write to a folded deal lands in a day row of its own; the sums do not mind.
    Deal.objects.filter(pk=old[0].pk).update(amount=Decimal("160.00"))
    assert drift() == []
    assert board_totals(manager) == count_totals(manager)
    assert board_totals(manager).by_bucket[3]["outstanding"] == Decimal("360.00")
    fold()
    assert NotPaidTotal.objects.filter(rep=rep).count() == 4
    assert drift() == []


def test_fold_board_totals_folds_now_what_beat_folds_every_hour(rep, capsys):
    DealFactory(rep=rep, promised_at=timezone.now() - datetime.timedelta(days=150))
    call_command("fold_board_totals")
    assert capsys.readouterr().out.startswith("fold_board_totals: ")
    assert NotPaidTotal.objects.get(rep=rep, axis="promised").day == LONG_AGO
    assert drift() == []


def test_the_board_totals_are_one_query_with_every_edge_day_counted(
    manager, rep, django_assert_num_queries
):
    DealFactory(rep=rep)
    assert manager.is_manager  # the roles: read once a request, by the navigation too
    with django_assert_num_queries(1):
        totals = board_totals(manager)
    assert totals.count == 1


def test_the_fold_keeps_apart_every_day_the_board_tells_apart(settings):
    """The board's oldest bucket and the longest rotting limit are younger than the fold."""
    today = datetime.date(2026, 12, 7)
    first_kept = fold_days(today)
    oldest_bucket = max(b.max_days for b in BUCKETS if b.max_days is not None)
    assert first_kept["promised"] < today - datetime.timedelta(days=oldest_bucket + 2)
    longest = max(settings.CLEARED_ROTTING_DAYS.values())
    assert first_kept["moved"] < today - datetime.timedelta(days=longest + 1)
