"""The webhooks pages: managers for their team, operators for everything; the
secret shown once; forged ids 404; bad input back on the form."""

import pytest
from django.urls import reverse

from hooks import services
from hooks.models import Delivery, DeliveryState, Event, EventType, Subscription
from pipeline.models import Role
from tests.conftest import _client_for
from tests.factories import UserFactory
from tests.hooks.conftest import deliver_all

pytestmark = pytest.mark.django_db

LIST = reverse("hooks:subscription_list")


def _mine(manager, receiver) -> Subscription:
    return Subscription.objects.create(owner=manager, url=receiver.url, events=["deal.lost"])


NEW = reverse("hooks:subscription_new")


def _form(url: str, **extra) -> dict:
    return {"url": url, "events": ["payment.cleared", "deal.lost"], "format": "json", **extra}


def test_a_manager_creates_a_subscription_and_sees_its_secret_once(manager_client, receiver):
    response = manager_client.post(NEW, _form(receiver.url, description="Books"))
    subscription = Subscription.objects.get()
    assert response.status_code == 302
    assert response["Location"] == subscription.get_absolute_url()
    assert subscription.secret.startswith("whsec_")
    assert subscription.events == ["deal.lost", "payment.cleared"]
    shown = manager_client.get(response["Location"])
    assert subscription.secret in shown.text
    assert "no-store" in shown["Cache-Control"] or "max-age=0" in shown["Cache-Control"]
    detail = manager_client.get(subscription.get_absolute_url())
    assert detail.status_code == 200
    assert subscription.secret not in detail.text
    assert subscription.secret not in manager_client.get(LIST).text


def test_reps_and_auditors_are_refused(rep_client, auditor_client, manager, receiver):
    subscription = Subscription.objects.create(
        owner=manager, url=receiver.url, events=["deal.lost"]
    )
    for client in (rep_client, auditor_client):
        assert client.get(LIST).status_code == 403
        assert client.post(NEW, _form(receiver.url)).status_code == 403
        assert client.get(subscription.get_absolute_url()).status_code == 403
        test = reverse("hooks:subscription_test", args=[subscription.pk])
        assert client.post(test).status_code == 403
    assert Subscription.objects.count() == 1


def test_another_managers_subscription_is_a_404(manager_client, other_rep, receiver):
    theirs = Subscription.objects.create(
        owner=other_rep.manager, url=receiver.url, events=["deal.lost"]
    )
    assert manager_client.get(theirs.get_absolute_url()).status_code == 404
    for name in ("subscription_enable", "subscription_disable", "subscription_delete"):
        assert manager_client.post(reverse(f"hooks:{name}", args=[theirs.pk])).status_code == 404
    assert Subscription.objects.filter(pk=theirs.pk, is_active=True).exists()


def test_an_operator_sees_and_manages_every_subscription(manager, receiver):
    operator = UserFactory(username="operator", is_superuser=True, role=Role.MANAGER)
    theirs = _mine(manager, receiver)
    client = _client_for(operator)
    assert receiver.url in client.get(LIST).text
    assert client.get(theirs.get_absolute_url()).status_code == 200
    client.post(reverse("hooks:subscription_disable", args=[theirs.pk]))
    assert not Subscription.objects.get(pk=theirs.pk).is_active


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", "Give an http:// or https:// address."),
        ("not a url", "Enter a valid URL"),
        ("", "This field is required"),
    ],
)
def test_a_bad_url_comes_back_with_the_message_next_to_it(manager_client, url, message):
    response = manager_client.post(NEW, _form(url))
    assert response.status_code == 400
    assert 'id="id_url_error"' in response.text
    assert message in response.text
    assert Subscription.objects.count() == 0


def test_no_event_chosen_is_refused_next_to_the_events(manager_client, receiver):
    response = manager_client.post(NEW, {"url": receiver.url, "format": "json"})
    assert response.status_code == 400
    assert 'id="id_events_error"' in response.text


def test_in_production_a_loopback_or_private_target_is_refused(manager_client, settings):
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False
    for url in ("http://127.0.0.1:9/hook", "http://10.0.0.8/hook", "http://localhost/x"):
        response = manager_client.post(NEW, _form(url))
        assert response.status_code == 400
        assert "private or local network" in response.text
    assert Subscription.objects.count() == 0


def test_send_a_test_event_reaches_the_receiver_and_shows_in_the_log(
    manager_client, manager, receiver
):
    subscription = Subscription.objects.create(
        owner=manager, url=receiver.url, events=["deal.lost"]
    )
    receiver.secret = subscription.secret
    response = manager_client.post(reverse("hooks:subscription_test", args=[subscription.pk]))
    assert response.status_code == 302
    deliver_all()
    (sent,) = receiver.ok()
    assert sent["json"]["type"] == "webhook.test"
    assert sent["verified"] is True
    log = manager_client.get(subscription.get_absolute_url()).text
    assert Event.objects.get().id in log
    assert "Delivered" in log
    assert "webhook.test" in log


def test_resend_from_the_log(manager_client, manager, receiver):
    subscription = Subscription.objects.create(
        owner=manager, url=receiver.url, events=["deal.lost"]
    )
    manager_client.post(reverse("hooks:subscription_test", args=[subscription.pk]))
    deliver_all()
    delivery = Delivery.objects.get()
    url = reverse("hooks:delivery_resend", args=[subscription.pk, delivery.pk])
    assert manager_client.post(url).status_code == 302
    assert Delivery.objects.get().state == DeliveryState.PENDING
    deliver_all()
    assert receiver.ids() == {delivery.event_id: 2}


def test_a_delivery_of_another_subscription_cannot_be_resent_through_mine(
    manager_client, manager, other_rep, receiver
):
    mine = _mine(manager, receiver)
    theirs = Subscription.objects.create(
        owner=other_rep.manager, url=receiver.url, events=["deal.lost"]
    )

    services.subscription_send_test(subscription=theirs, actor=other_rep.manager)
    delivery = Delivery.objects.get()
    url = reverse("hooks:delivery_resend", args=[mine.pk, delivery.pk])
    assert manager_client.post(url).status_code == 404


def test_delete_removes_it_and_its_log(manager_client, manager, receiver):
    subscription = Subscription.objects.create(
        owner=manager, url=receiver.url, events=["deal.lost"]
    )
    manager_client.post(reverse("hooks:subscription_test", args=[subscription.pk]))
    manager_client.post(reverse("hooks:subscription_delete", args=[subscription.pk]))
    assert not Subscription.objects.exists()
    assert not Delivery.objects.exists()


def test_the_nav_shows_webhooks_to_managers_only(manager_client, rep_client):
    assert f'href="{LIST}"' in manager_client.get("/").text
    assert f'href="{LIST}"' not in rep_client.get("/").text


def test_every_event_is_offered_on_the_form(manager_client):
    page = manager_client.get(LIST).text
    for value in EventType.values:
        assert f'value="{value}"' in page
