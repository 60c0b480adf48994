"""The pure parts of billing: terms with exceptions, deposits, rounding, plans, cut-offs."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from billing.policy import commission_for, cutoff_missed, next_cutoff, split_into_instalments
from pipeline.terms import (
    PaymentOption,
    Standing,
    deposit_amount,
    money_round,
    parse_deposit_rule,
    terms_for,
)


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        ("1.005", "1.01"),
        ("1.004", "1.00"),
        ("2.675", "2.68"),
        ("-1.005", "-1.01"),
        ("0.125", "0.13"),
    ],
)
def test_money_rounds_half_up_to_the_cent(value, rounded):
    assert money_round(Decimal(value)) == Decimal(rounded)


def test_commission_is_rounded_half_up_not_to_even():
    assert commission_for(Decimal("10.05"), Decimal("0.10")) == Decimal("1.01")
    assert commission_for(Decimal("0.25"), Decimal("0.10")) == Decimal("0.03")


def test_a_slow_payer_with_an_exception_may_be_invoiced_with_a_deposit():
    terms = terms_for(Standing.SLOW, "1 payment bounced recently.", invoicing_exception="Approved")
    assert terms.allows(PaymentOption.INVOICE)
    assert terms.deposit_required(PaymentOption.INVOICE)
    assert terms.exception == "Approved"
    assert "exception" in terms.summary


def test_an_exception_changes_nothing_for_new_or_good_customers():
    for standing in (Standing.NEW, Standing.GOOD):
        assert terms_for(standing, invoicing_exception="x") == terms_for(standing)


@pytest.mark.parametrize(
    ("rule", "option", "amount", "deposit"),
    [
        ("20%", PaymentOption.INVOICE, "1000.00", "200.00"),
        ("20%", PaymentOption.INVOICE, "10.03", "2.01"),  # 2.006 → 2.01
        ("250.00", PaymentOption.INVOICE, "1000.00", "250.00"),
        ("250.00", PaymentOption.INVOICE, "100.00", "100.00"),  # never more than the deal
        ("20%", PaymentOption.UPFRONT, "1000.00", "1000.00"),
        ("20%", PaymentOption.ON_FILE, "1000.00", "0.00"),
    ],
)
def test_the_deposit_follows_the_rule_from_settings(settings, rule, option, amount, deposit):
    settings.CLEARED_DEPOSIT = rule
    assert deposit_amount(Decimal(amount), option) == Decimal(deposit)


@pytest.mark.parametrize("raw", ["twenty", "0%", "120%", "-5", "10.001", ""])
def test_a_bad_deposit_rule_is_an_error_not_a_default(raw):
    with pytest.raises(ImproperlyConfigured):
        parse_deposit_rule(raw)


@pytest.mark.parametrize(
    ("total", "count", "parts"),
    [
        ("1000.00", 3, ["333.33", "333.33", "333.34"]),
        ("100.00", 3, ["33.33", "33.33", "33.34"]),
        ("200.00", 3, ["66.67", "66.67", "66.66"]),
        ("50.00", 1, ["50.00"]),
    ],
)
def test_a_plan_splits_the_balance_exactly(total, count, parts):
    split = split_into_instalments(Decimal(total), count)
    assert split == [Decimal(p) for p in parts]
    assert sum(split) == Decimal(total)


@pytest.mark.parametrize(
    ("cutoff", "today", "expected"),
    [
        (20, date(2026, 11, 10), date(2026, 11, 20)),
        (20, date(2026, 11, 21), date(2026, 12, 20)),
        (31, date(2027, 2, 10), date(2027, 2, 28)),
        (25, date(2026, 12, 26), date(2027, 1, 25)),
        (None, date(2026, 11, 10), None),
    ],
)
def test_the_next_accounting_cutoff(cutoff, today, expected):
    assert next_cutoff(cutoff, today) == expected


def test_an_invoice_issued_after_the_cutoff_day_misses_it():
    assert cutoff_missed(date(2026, 11, 21), 20)
    assert not cutoff_missed(date(2026, 11, 20), 20)
    assert not cutoff_missed(date(2026, 11, 28), None)
