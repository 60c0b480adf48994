"""The domain event deal_changed: once per deal per transaction, after commit, never on rollback."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from pipeline import services
from pipeline.events import (
    deal_changed,
    deal_changed_on_commit,
    deal_changes_claim,
    deal_changes_done,
    deal_changes_pending,
)
from pipeline.models import Deal, DealChange
from pipeline.stages import LostReason, Stage
from pipeline.terms import PaymentOption
from tests.events import announced
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db


def test_a_deal_changed_twice_in_one_transaction_is_announced_once(deal, rep):
    with announced() as sent:
        with transaction.atomic():
            deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
            deal_changed_on_commit(deal_id=deal.pk, actor_id=None)
        assert sent == []  # not before the commit
    assert sent == [(deal.pk, rep.pk)]


def test_each_deal_of_a_transaction_is_announced_once(rep, customer):
    first, second = DealFactory(rep=rep, customer=customer), DealFactory(rep=rep, customer=customer)
    with announced() as sent:
        for deal in (first, second, first, second):
            deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
    assert sent == [(first.pk, rep.pk), (second.pk, rep.pk)]


def test_nothing_is_announced_for_a_transaction_that_rolls_back(deal, rep):
    with announced() as sent, pytest.raises(RuntimeError), transaction.atomic():
        deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
        raise RuntimeError("refused")
    assert sent == []


def test_a_rolled_back_savepoint_takes_its_announcement_with_it(rep, customer):
    kept, undone = DealFactory(rep=rep, customer=customer), DealFactory(rep=rep, customer=customer)
    with announced() as sent:
        deal_changed_on_commit(deal_id=kept.pk, actor_id=rep.pk)
        with pytest.raises(RuntimeError), transaction.atomic():
            deal_changed_on_commit(deal_id=undone.pk, actor_id=rep.pk)
            raise RuntimeError("refused")
    assert sent == [(kept.pk, rep.pk)]


def test_an_illegal_move_announces_nothing(deal, rep):
    with announced() as sent, pytest.raises(services.IllegalMove):
        services.deal_move(deal_id=deal.pk, to_stage=Stage.PAYMENT_CLEARED, actor=rep)
    assert sent == []


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_event_is_sent_at_once(rep, customer):
    deal = DealFactory(rep=rep, customer=customer)
    sent = []

    def receiver(sender, *, deal_id, actor_id, **kwargs):
        sent.append(deal_id)

    deal_changed.connect(receiver, weak=False, dispatch_uid="test-at-once")
    try:
        deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
        assert sent == [deal.pk]
        deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)  # autocommit: a new one
        assert sent == [deal.pk, deal.pk]
    finally:
        deal_changed.disconnect(dispatch_uid="test-at-once")


def test_a_failing_receiver_does_not_stop_the_others(deal, rep):
    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    deal_changed.connect(broken, weak=False, dispatch_uid="test-broken")
    try:
        with announced() as sent:
            deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
    finally:
        deal_changed.disconnect(dispatch_uid="test-broken")
    assert sent == [(deal.pk, rep.pk)]


def test_reminders_listen_to_deal_changed(deal, rep):
    with mock.patch("reminders.tasks.reminders_drain.apply_async") as queued, announced():
        deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
    queued.assert_called_once_with(retry=False)


def test_the_change_is_in_the_outbox_before_the_commit(deal, rep):
    """Written in the writer's transaction: a process that dies after the commit,
    before the signal, loses nothing."""
    with transaction.atomic():
        deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
        change = DealChange.objects.get(deal=deal)
        assert change.actor_id == rep.pk
    assert deal_changes_pending() == 1


def test_a_rolled_back_change_leaves_no_outbox_row(deal, rep):
    with pytest.raises(RuntimeError), transaction.atomic():
        deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
        raise RuntimeError("the write failed")
    assert not DealChange.objects.filter(deal=deal).exists()


def test_many_changes_to_one_deal_are_one_outbox_row(deal, rep, manager):
    for actor in (rep, manager, rep, manager):
        deal_changed_on_commit(deal_id=deal.pk, actor_id=actor.pk)
    change = DealChange.objects.get(deal=deal)
    assert change.actor_id == manager.pk  # the latest change's actor


def test_a_change_made_while_claimed_survives_the_release(deal, rep):
    deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
    claimed = deal_changes_claim(limit=10, lease=timedelta(minutes=1))
    assert [c.deal_id for c in claimed] == [deal.pk]
    assert deal_changes_claim(limit=10, lease=timedelta(minutes=1)) == []  # held
    deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)  # changed again meanwhile
    assert deal_changes_done(claimed) == 0
    assert DealChange.objects.filter(deal=deal).exists()
    # Free at once for the next worker: the newer change is not held by the old claim.
    assert [c.deal_id for c in deal_changes_claim(limit=10, lease=timedelta(minutes=1))] == [
        deal.pk
    ]


def test_a_claim_whose_worker_died_is_taken_over_after_its_lease(deal, rep):
    deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
    assert deal_changes_claim(limit=10, lease=timedelta(seconds=-1))  # a lease already over
    again = deal_changes_claim(limit=10, lease=timedelta(minutes=1))
    assert [c.deal_id for c in again] == [deal.pk]
    assert deal_changes_done(again) == 1
    assert deal_changes_pending() == 0


# --- the pipeline's services announce -------------------------------------------


def test_promising_a_deal_announces_it(rep, customer):
    today = timezone.localdate()
    with announced() as sent:
        deal = services.deal_promise(
            rep=rep,
            customer=customer,
            title="Dental chairs",
            amount=Decimal("900.00"),
            payment_option=PaymentOption.UPFRONT,
            expected_delivery_date=today + timedelta(days=7),
            next_step="Call",
            next_step_date=today + timedelta(days=1),
        )
    assert sent == [(deal.pk, rep.pk)]


def test_moving_a_deal_announces_it(deal, rep):
    with announced() as sent:
        services.deal_move(
            deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason=LostReason.OTHER
        )
    assert sent == [(deal.pk, rep.pk)]


def test_editing_a_deal_announces_it(deal, rep):
    with announced() as sent:
        services.deal_update(
            deal_id=deal.pk, actor=rep, expected_version=deal.version, amount=Decimal("1200.00")
        )
    assert sent == [(deal.pk, rep.pk)]


def test_recording_a_touch_announces_it(deal, rep):
    with announced() as sent:
        services.touch_record(
            deal=deal,
            author=rep,
            kind="call",
            discussed="Delivery",
            agreed_to="Friday",
            next_step="Confirm",
            next_step_date=timezone.localdate() + timedelta(days=1),
        )
    assert sent == [(deal.pk, rep.pk)]


def test_the_amount_cannot_go_under_the_money_received_copy(deal, rep):
    Deal.objects.filter(pk=deal.pk).update(received_amount=Decimal("400.00"))
    with pytest.raises(services.IllegalMove, match="400.00 already received"):
        services.deal_update(
            deal_id=deal.pk, actor=rep, expected_version=deal.version, amount=Decimal("300.00")
        )
