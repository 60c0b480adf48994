"""A manager sets a rep's commission rate from a day on; earned money never changes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import CommissionEntry, CommissionRate, PaymentKind
from pipeline.stages import Stage
from tests.billing.money import clear, record
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db


def _set(client, rep, percent, day):
    return client.post(
        reverse("billing:commission_rate", args=[rep.pk]),
        {"percent": percent, "effective_from": day.isoformat()},
    )


@pytest.fixture
def delivered(rep, customer):
    return DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)


def test_a_rate_from_today_applies_to_new_commission_and_leaves_earned_money_alone(
    manager, manager_client, rep, delivered
):
    first = clear(record(delivered, rep, "100.00", kind=PaymentKind.INSTALMENT), manager)
    response = _set(manager_client, rep, "5.00", timezone.localdate())
    assert response.status_code == 302 and response.url == reverse("team")
    clear(record(delivered, rep, "100.00", kind=PaymentKind.INSTALMENT), manager)
    earned = {e.payment_id: e for e in CommissionEntry.objects.all()}
    assert (earned[first.pk].rate, earned[first.pk].amount) == (Decimal("0.1000"), Decimal("10.00"))
    assert [e.amount for e in earned.values() if e.payment_id != first.pk] == [Decimal("5.00")]
    assert "5.00 %" in manager_client.get(reverse("team")).content.decode()


def test_a_rate_from_a_later_day_is_not_in_force_before_it(manager, rep, delivered):
    tomorrow = timezone.localdate() + timedelta(days=1)
    services.commission_rate_set(
        manager=manager, rep=rep, percent=Decimal("20"), effective_from=tomorrow
    )
    assert services.commission_rate_for(rep) == Decimal("0.10")
    assert services.commission_rate_for(rep, timezone.now() + timedelta(days=2)) == Decimal(
        "0.2000"
    )
    clear(record(delivered, rep, "100.00", kind=PaymentKind.INSTALMENT), manager)
    assert CommissionEntry.objects.get().amount == Decimal("10.00")


def test_the_team_page_shows_the_rate_in_force_and_the_next_one(manager, manager_client, rep):
    today = timezone.localdate()
    services.commission_rate_set(
        manager=manager, rep=rep, percent=Decimal("7.5"), effective_from=today
    )
    services.commission_rate_set(
        manager=manager, rep=rep, percent=Decimal("9"), effective_from=today + timedelta(days=30)
    )
    html = manager_client.get(reverse("team")).content.decode()
    assert "7.50 %" in html and "9.00 %" in html
    history = manager_client.get(reverse("billing:commission_rate", args=[rep.pk]))
    assert history.status_code == 200 and "7.50 %" in history.content.decode()


def test_a_later_rate_set_for_the_same_day_wins(manager, rep):
    today = timezone.localdate()
    for percent in ("6", "8"):
        services.commission_rate_set(
            manager=manager, rep=rep, percent=Decimal(percent), effective_from=today
        )
    assert services.commission_rate_for(rep) == Decimal("0.0800")
    assert CommissionRate.objects.filter(rep=rep).count() == 2  # a history, never an edit


@pytest.mark.parametrize(
    ("percent", "message"),
    [
        ("101", "A rate from 0 to 100 %."),
        ("-1", "A rate from 0 to 100 %."),
        ("abc", "A number from 0 to 100, e.g. 12.50."),
        ("12.345", "At most two decimals"),
        ("", "Type a rate from 0 to 100."),
        ("NaN", "A number from 0 to 100"),
    ],
)
def test_a_rate_out_of_bounds_comes_back_with_a_message_next_to_the_field(
    manager_client, rep, percent, message
):
    response = _set(manager_client, rep, percent, timezone.localdate())
    assert response.status_code == 422
    assert message in " ".join(response.context["form"].errors["percent"])
    assert f'value="{percent}"' in response.content.decode() or percent == ""
    assert not CommissionRate.objects.exists()


def test_a_rate_from_a_past_day_is_refused_next_to_the_field(manager_client, rep):
    response = _set(manager_client, rep, "5", timezone.localdate() - timedelta(days=1))
    assert response.status_code == 422
    assert "From today or a later day" in " ".join(
        response.context["form"].errors["effective_from"]
    )
    assert not CommissionRate.objects.exists()


def test_a_manager_cannot_set_another_teams_reps_rate(manager, manager_client, other_rep):
    response = _set(manager_client, other_rep, "5", timezone.localdate())
    assert response.status_code == 404
    with pytest.raises(services.NotAllowed):
        services.commission_rate_set(
            manager=manager,
            rep=other_rep,
            percent=Decimal("5"),
            effective_from=timezone.localdate(),
        )
    assert not CommissionRate.objects.exists()


def test_a_rep_cannot_set_their_own_rate(rep_client, rep):
    assert _set(rep_client, rep, "50", timezone.localdate()).status_code == 403
    assert not CommissionRate.objects.exists()
