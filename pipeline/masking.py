"""Full card and bank account numbers never reach the database or the logs.

PCI DSS forbids storing a full primary account number; a rep who types one
into a note must not make Cleared store it. A run of 12 to 19 digits, written
with or without spaces or dashes, that passes the Luhn check is taken for a
card or account number and replaced by a mask that keeps the last 4 digits.
"""

import logging
import re

from django.db import models

# 12-19 digits, single spaces or dashes allowed between digits; not part of a
# longer run of digits.
_CANDIDATE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def looks_like_card_number(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 12 <= len(digits) <= 19 and digits.isdigit() and luhn_valid(digits)


def mask_card_numbers(text: str) -> str:
    """Return ``text`` with every Luhn-valid 12-19 digit run masked to its last 4."""
    if not text:
        return text

    def _mask(match: re.Match) -> str:
        digits = re.sub(r"[ -]", "", match.group(0))
        if not luhn_valid(digits):
            return match.group(0)
        return f"•••• {digits[-4:]}"

    return _CANDIDATE.sub(_mask, text)


def contains_card_number(text: str) -> bool:
    return bool(text) and mask_card_numbers(text) != text


class _MasksCardNumbers:
    """Masks card and account numbers before a value reaches the database.

    Masking in the field, not in a form, covers every way in: forms, the
    admin, services, and ``QuerySet.update()``.
    """

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return mask_card_numbers(value) if isinstance(value, str) else value

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if isinstance(value, str):
            value = mask_card_numbers(value)
            setattr(model_instance, self.attname, value)
        return value


class MaskedTextField(_MasksCardNumbers, models.TextField):
    pass


class MaskedCharField(_MasksCardNumbers, models.CharField):
    pass


class MaskCardNumbersFilter(logging.Filter):
    """Logging filter: a card number in a log line is masked like in the database."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_card_numbers(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        return True
