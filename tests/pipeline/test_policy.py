from decimal import Decimal

import pytest

from pipeline.terms import (
    PaymentHistory,
    PaymentOption,
    Standing,
    standing_from_history,
    terms_for,
)


@pytest.mark.parametrize(
    ("history", "standing"),
    [
        (PaymentHistory(), Standing.NEW),
        (PaymentHistory(paid_deals=3, average_days_late=Decimal("2")), Standing.GOOD),
        (PaymentHistory(paid_deals=1, average_days_late=None), Standing.GOOD),
        (PaymentHistory(paid_deals=4, average_days_late=Decimal("21")), Standing.SLOW),
        (
            PaymentHistory(paid_deals=9, average_days_late=Decimal("0"), recent_bounces=1),
            Standing.SLOW,
        ),
        (PaymentHistory(paid_deals=0, recent_bounces=2), Standing.SLOW),
    ],
)
def test_standing_is_learned_from_the_history(history, standing):
    assert standing_from_history(history)[0] == standing


def test_the_standing_comes_with_a_reason_in_words():
    _, reason = standing_from_history(PaymentHistory(paid_deals=2, average_days_late=Decimal("12")))
    assert reason == "Pays 12 days late on average."


def test_a_new_customer_owes_a_deposit_whatever_the_option():
    terms = terms_for(Standing.NEW)
    assert all(terms.allows(option) for option in PaymentOption.values)
    assert all(terms.deposit_required(option) for option in PaymentOption.values)


def test_a_good_payer_may_be_invoiced_without_a_deposit():
    terms = terms_for(Standing.GOOD)
    assert terms.allows(PaymentOption.INVOICE)
    assert not terms.deposit_required(PaymentOption.INVOICE)


def test_a_slow_payer_may_not_be_invoiced():
    terms = terms_for(Standing.SLOW)
    assert not terms.allows(PaymentOption.INVOICE)
    assert terms.allows(PaymentOption.UPFRONT) and terms.allows(PaymentOption.ON_FILE)
    assert "exception" in terms.summary
