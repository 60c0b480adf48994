"""seed_scale (issue 23): the benchmark's data set is one the app works on.

Loaded the fast way (COPY, indexes and constraints after the load, history and
outbox rows written set-based), it must still be what the product writes: every
index and constraint back, a creation row in the change history of each deal,
customer, payment and invoice, a stage move's row for each deal that moved, a
small live outbox, and a rep who signs in sees their own deals and reminders.
"""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from billing.models import Invoice, Payment
from pipeline.deal_changes import DealChange
from pipeline.models import Customer, Deal, User
from pipeline.not_paid import LONG_AGO, Axis, NotPaidTotal, drift, fold_days
from pipeline.stages import Stage
from reminders.models import Reminder

pytestmark = pytest.mark.django_db

DEALS = 150


def _schema(tables: list[str]) -> dict[str, set[str]]:
    with connection.cursor() as cursor:
        return {
            table: set(connection.introspection.get_constraints(cursor, table)) for table in tables
        }


@pytest.fixture
def seeded():
    tables = [Deal._meta.db_table, Reminder._meta.db_table, Deal.history.model._meta.db_table]
    before = _schema(tables)
    call_command("seed_scale", deals=DEALS, teams=1, reps_per_team=3, stdout=io.StringIO())
    return before, _schema(tables)


def test_every_index_and_constraint_is_back_after_the_load(seeded):
    before, after = seeded
    assert after == before
    assert any("not_paid_yet" in name for name in after[Deal._meta.db_table])


def test_history_has_each_rows_creation_and_each_deals_stage_move(seeded):
    for model in (Deal, Customer, Payment, Invoice):
        created = model.history.model.objects.filter(history_type="+")
        assert created.count() == model.objects.count() > 0, model
    moved = Deal.objects.exclude(stage=Stage.PROMISED)
    changes = Deal.history.model.objects.filter(history_type="~")
    assert changes.count() == moved.count() > 0
    change = changes.first()
    deal = Deal.objects.get(pk=change.id)
    assert change.history_changes == [["stage", "promised", deal.stage]]
    assert change.history_fields == ",stage,"
    assert change.history_user_id == deal.rep_id
    assert change.history_date == deal.stage_changed_at
    # The creation is the rep's, on the day the customer said yes.
    created = Deal.history.model.objects.get(id=deal.pk, history_type="+")
    assert (created.history_user_id, created.history_date) == (deal.rep_id, deal.created_at)


def test_a_deal_last_changed_when_it_last_moved_and_a_small_outbox_waits(seeded):
    deal = Deal.objects.order_by("pk").first()
    assert deal.updated_at == deal.stage_changed_at
    assert DealChange.objects.count() == min(200, DEALS)
    newest = Deal.objects.order_by("-stage_changed_at", "-id").first()
    assert DealChange.objects.filter(deal=newest).exists()


def test_a_rep_signs_in_and_sees_their_deals_and_reminders(seeded):
    rep = User.objects.get(username="scale_rep_1_1")
    theirs = Deal.objects.filter(rep=rep)
    assert theirs.exists()
    assert Reminder.objects.filter(owner=rep).exists()
    assert rep.check_password("demo") and rep.is_active
    client = Client()
    client.force_login(rep)
    assert client.get(reverse("home")).status_code == 200
    page = client.get(reverse("deal_detail", args=[theirs.first().pk]))
    assert page.status_code == 200
    other = Deal.objects.exclude(rep=rep).first()
    assert client.get(reverse("deal_detail", args=[other.pk])).status_code == 404


def test_a_second_load_is_refused(seeded):
    with pytest.raises(Exception, match="already loaded"):
        call_command("seed_scale", deals=10)


def test_the_board_summary_is_folded_as_beats_hourly_fold_keeps_it(seeded):
    first_kept = fold_days()
    kept = NotPaidTotal.objects.exclude(day=LONG_AGO)
    assert NotPaidTotal.objects.filter(day=LONG_AGO).exists()  # 240 days of deals: some fold
    assert not kept.filter(axis=Axis.PROMISED, day__lt=first_kept[Axis.PROMISED]).exists()
    assert not kept.filter(axis=Axis.MOVED, day__lt=first_kept[Axis.MOVED]).exists()
    assert drift() == []
