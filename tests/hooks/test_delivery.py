"""Delivery: at least once, retried with back-off, given up after a day, claimed
by compare-and-set; a subscription failing for a day is disabled, its owner told."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from config.celery import app
from hooks import delivery as hooks_delivery
from hooks import services as hooks_services
from hooks.delivery import delivery_claim, retry_delay
from hooks.models import Delivery, DeliveryState, Subscription
from pipeline import services
from pipeline.stages import Stage
from tests.factories import DealFactory
from tests.hooks.conftest import deliver_all

pytestmark = pytest.mark.django_db


def _lose(deal, rep) -> Delivery:
    services.deal_move(deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="other")
    return Delivery.objects.filter(event__type="deal.lost").get()


@pytest.fixture
def lost_only(subscription):
    Subscription.objects.filter(pk=subscription.pk).update(events=["deal.lost"])
    subscription.refresh_from_db()
    return subscription


def test_a_receiver_answering_500_gets_the_event_again_later(lost_only, receiver, deal, rep):
    delivery = _lose(deal, rep)
    receiver.statuses = [500]
    deliver_all()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.RETRYING
    assert delivery.response_code == 500
    assert lost_only.__class__.objects.get(pk=lost_only.pk).failing_since is not None
    deliver_all()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED
    assert [r["status"] for r in receiver.received] == [500, 200]
    # The same event id both times: a receiver deduplicates by it.
    assert receiver.received[0]["id"] == receiver.received[1]["id"] == delivery.event_id
    assert Subscription.objects.get(pk=lost_only.pk).failing_since is None


def test_a_retry_waits_exponentially_longer(settings):
    settings.HOOKS_RETRY_BASE_SECONDS = 10
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 30, 90, 270]
    assert retry_delay(20) == timedelta(hours=6)


def test_a_retry_is_not_sent_before_its_time(lost_only, receiver, deal, rep, settings):
    settings.HOOKS_RETRY_BASE_SECONDS = 600
    delivery = _lose(deal, rep)
    receiver.statuses = [503]
    deliver_all()
    deliver_all()
    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert delivery.next_attempt_at > timezone.now() + timedelta(minutes=9)


def test_after_a_day_of_failures_it_gives_up_and_disables_the_subscription_and_tells_the_owner(
    lost_only, receiver, deal, rep, manager, django_capture_on_commit_callbacks
):
    delivery = _lose(deal, rep)
    day_ago = timezone.now() - timedelta(hours=25)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=day_ago)
    Subscription.objects.filter(pk=lost_only.pk).update(failing_since=day_ago)
    receiver.statuses = [500]
    with django_capture_on_commit_callbacks(execute=True):
        deliver_all()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED
    subscription = Subscription.objects.get(pk=lost_only.pk)
    assert not subscription.is_active
    assert "failed for 24 hours" in subscription.disabled_reason
    assert [m.to for m in mail.outbox] == [[manager.email]]
    assert subscription.url in mail.outbox[0].body


def test_a_disabled_subscription_is_sent_nothing_and_what_waited_goes_when_enabled(
    lost_only, receiver, deal, rep, customer
):
    waiting = _lose(deal, rep)
    hooks_services.subscription_disable(subscription=lost_only, actor=rep)
    assert deliver_all() == 0
    other = DealFactory(rep=rep, customer=customer)
    services.deal_move(deal_id=other.pk, to_stage=Stage.LOST, actor=rep, lost_reason="other")
    assert Delivery.objects.count() == 1  # nothing new is written for a disabled one
    assert receiver.received == []
    hooks_services.subscription_enable(subscription=lost_only)
    assert deliver_all() == 1
    assert receiver.ids() == {waiting.event_id: 1}


def test_two_workers_claiming_one_delivery_get_it_once(lost_only, deal, rep):
    delivery = _lose(deal, rep)
    assert delivery_claim(delivery_id=delivery.pk) is not None
    assert delivery_claim(delivery_id=delivery.pk) is None


def test_a_claim_held_by_a_killed_worker_is_taken_over_when_its_lease_runs_out(
    lost_only, receiver, deal, rep
):
    delivery = _lose(deal, rep)
    assert delivery_claim(delivery_id=delivery.pk) is not None  # the worker then dies
    assert deliver_all() == 0  # its lease still runs
    Delivery.objects.filter(pk=delivery.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert deliver_all() == 1
    assert receiver.ids() == {delivery.event_id: 1}


def test_a_late_answer_from_a_lapsed_claim_does_not_overwrite_the_new_one(
    lost_only, receiver, deal, rep
):
    delivery = _lose(deal, rep)
    first = delivery_claim(delivery_id=delivery.pk)
    Delivery.objects.filter(pk=delivery.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert deliver_all() == 1  # another worker took over and delivered
    response = hooks_delivery.Response(500, "", "HTTP 500")
    hooks_delivery._record(first, "{}", response, timezone.now())
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED


def test_resend_sends_the_same_event_id_again(lost_only, receiver, deal, rep):
    delivery = _lose(deal, rep)
    deliver_all()
    hooks_services.delivery_resend(delivery=delivery)
    deliver_all()
    assert receiver.ids() == {delivery.event_id: 2}
    assert all(r["verified"] for r in receiver.received)


def test_a_signature_made_with_another_secret_does_not_verify(lost_only, receiver, deal, rep):
    _lose(deal, rep)
    deliver_all()
    sent = receiver.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(sent["body"], sent["headers"])


def test_a_private_target_is_refused_at_send_time_in_production(
    lost_only, receiver, deal, rep, settings
):
    delivery = _lose(deal, rep)
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False
    deliver_all()
    delivery.refresh_from_db()
    assert receiver.received == []
    assert delivery.state == DeliveryState.RETRYING
    assert "private or local network" in delivery.last_error


def test_an_unreachable_receiver_is_a_failed_attempt(lost_only, deal, rep, receiver):
    delivery = _lose(deal, rep)
    receiver.stop()
    deliver_all()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.RETRYING
    assert delivery.response_code is None
    assert delivery.last_error


def test_webhook_work_runs_on_its_own_queue(settings):

    for name in ("hooks.deliver", "hooks.deliveries_run", "hooks.scan"):
        route = app.amqp.router.route({}, name)
        assert route["queue"].name == "webhooks", name
    for entry in ("hooks-deliveries-run", "hooks-scan"):
        assert settings.CELERY_BEAT_SCHEDULE[entry]["options"]["queue"] == "webhooks"
    assert app.amqp.router.route({}, "reminders.reminders_scan")["queue"].name == "heartbeat"
