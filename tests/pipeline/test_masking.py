import logging

import pytest

from pipeline.masking import luhn_valid, mask_card_numbers
from pipeline.models import Customer
from tests.factories import DealFactory, TouchFactory

VISA = "4111 1111 1111 1111"


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "378282246310005",
        "5555 5555 5555 4444",
        "6011-0009-9013-9424",
    ],
)
def test_card_numbers_are_masked_to_their_last_four(number):
    masked = mask_card_numbers(f"Card: {number}, thanks")
    assert masked == f"Card: •••• {number[-4:]}, thanks"


@pytest.mark.parametrize(
    "text",
    [
        "Call +1 555 0100 2345",
        "Order 1234567890123",
        "4111 1111 1111 1112",
        "2026-11-22",
        "Invoice 12345",
        "",
    ],
)
def test_other_numbers_are_left_alone(text):
    assert mask_card_numbers(text) == text


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.django_db
def test_a_card_number_in_a_touch_or_note_never_reaches_the_database(rep):
    deal = DealFactory(rep=rep, notes=f"paid with {VISA}")
    touch = TouchFactory(deal=deal, discussed=f"She read me {VISA} over the phone")
    deal.refresh_from_db()
    touch.refresh_from_db()
    assert "4111 1111 1111 1111" not in deal.notes and deal.notes.endswith("•••• 1111")
    assert touch.discussed == "She read me •••• 1111 over the phone"


@pytest.mark.django_db
def test_masking_also_covers_queryset_update(customer):
    Customer.objects.filter(pk=customer.pk).update(plans_notes=f"card {VISA}")
    customer.refresh_from_db()
    assert customer.plans_notes == "card •••• 1111"


def test_card_numbers_are_masked_in_logs(caplog):
    from pipeline.masking import MaskCardNumbersFilter

    logger = logging.getLogger("tests.masking")
    logger.addFilter(MaskCardNumbersFilter())
    with caplog.at_level(logging.INFO, logger="tests.masking"):
        logger.info("customer gave %s", VISA)
    assert "4111 1111 1111 1111" not in caplog.text
    assert "•••• 1111" in caplog.text
