"""Full card and bank account numbers never reach the database or the logs.

PCI DSS forbids storing a full primary account number; a rep who types one
into a note must not make Cleared store it. A number is recognised however it
is written:

- digits: any Unicode decimal digit (ASCII, fullwidth ``４１１１``, …);
- separators between groups of digits: spaces of every kind (no-break, thin,
  ideographic, zero-width, several in a row, "+" as in a query string),
  dashes, dots, underscores and slashes; log lines are also read
  percent-decoded (``?q=4111%201111…``);
- in context: a *run* of digits joined by separators may hold more than the
  card (``4111 1111 1111 1111 12/28``); every span of whole groups holding 12
  to 19 digits that passes the Luhn check is taken for a card or account
  number, not only the whole run. Inside an unbroken run of more than 19
  digits every 12-19 digit window is tried.

A span found is replaced by ``•••• `` and its last 4 digits. Windows only
start and end between groups, and the separators of one window are of one
kind, so phone numbers, amounts, dates and order numbers stay as they are. Of
overlapping candidates the one grouped like a card (4-4-4-4, 4-6-5), then of
the commonest length, wins. A run of more than 400 digits is masked whole.

The same rule serves the model fields (``MaskedCharField``,
``MaskedTextField``, ``MaskedJSONField``), the logs (``MaskingFormatter``,
``MaskCardNumbersFilter``), the data migrations (``mask_stored_card_numbers``)
and the scanner (``pipeline.card_scan``).
"""

import importlib
import logging
import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import unquote

from django.db import models

MASK = "•••• "
MIN_DIGITS, MAX_DIGITS = 12, 19
# A run with more digits than this is not text anyone reads: it is masked whole
# rather than searched window by window (which would cost time on huge cells).
_MAX_RUN_DIGITS = 400

# Separator characters, each with its kind. A window's separators must all be
# of one kind: "4111 1111 1111 1111 12/28" is a card followed by an expiry.
_SEPARATOR_KINDS = {
    "space": (
        " \t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
        "\u2009\u200a\u202f\u205f\u3000\u200b\u2060\ufeff"
        "+"  # a space in a query string: /deals/?q=4111+1111+1111+1111
    ),
    "dash": "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d",
    "dot": ".\u00b7\u2024\u2027\u30fb\uff0e\uff65",
    "underscore": "_\uff3f",
    "slash": "/\\\u2044\u2215\uff0f\uff3c",
}
_KIND_OF = {char: kind for kind, chars in _SEPARATOR_KINDS.items() for char in chars}
_SEPARATOR_CLASS = "[" + re.escape("".join(_KIND_OF)) + "]"
# Up to 8 separator characters between two groups ("4111  -  1111").
_RUN = re.compile(rf"\d+(?:{_SEPARATOR_CLASS}{{1,8}}\d+)*")
_GROUP = re.compile(r"\d+")
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _ascii_digits(digits: str) -> str:
    """``digits`` (any script's decimal digits) as ASCII digits."""
    if digits.isascii():
        return digits
    return "".join(str(unicodedata.decimal(char)) for char in digits)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        total += _DOUBLED[value] if index % 2 else value
    return total % 10 == 0


def _separator_kind(separator: str) -> frozenset[str]:
    return frozenset(_KIND_OF[char] for char in separator)


# Card lengths, most common first: of two overlapping candidates, the likelier wins.
_LENGTH_RANK = {length: rank for rank, length in enumerate((16, 15, 19, 14, 13, 18, 17, 12))}


def _looks_grouped_like_a_card(sizes: list[int]) -> bool:
    """Groups as cards are written: 4-4-4-4(-3), 4-6-5, one block, or digit by digit.

    Of two overlapping candidates, one grouped like a card wins: in
    "4111 1111 1111 1111 12/28" the month is not part of the number.
    """
    if len(sizes) == 1 or all(size == 1 for size in sizes):
        return True
    if all(size == 4 for size in sizes[:-1]) and 3 <= sizes[-1] <= 4:
        return True
    return sizes[:2] == [4, 6]


def _candidates(run: str) -> list[tuple[tuple, int, int]]:
    """Every Luhn-valid card-length span of ``run``: (preference, start, end)."""
    groups = [(m.start(), m.end(), _ascii_digits(m.group())) for m in _GROUP.finditer(run)]
    total = sum(len(digits) for _, _, digits in groups)
    if total < MIN_DIGITS:
        return []
    if total > _MAX_RUN_DIGITS:
        return [((0, 0, 0, 0), 0, len(run))]
    kinds = [_separator_kind(run[groups[i][1] : groups[i + 1][0]]) for i in range(len(groups) - 1)]
    found = []
    for first, (start, _, digits) in enumerate(groups):
        if len(digits) > MAX_DIGITS:
            # One unbroken run: try every window inside it.
            for offset in range(len(digits) - MIN_DIGITS + 1):
                for size in range(MIN_DIGITS, min(MAX_DIGITS, len(digits) - offset) + 1):
                    if luhn_valid(digits[offset : offset + size]):
                        begin = start + offset
                        found.append(((0, 0, _LENGTH_RANK[size], begin), begin, begin + size))
            continue
        window, sizes = digits, [len(digits)]
        for last in range(first, len(groups)):
            if last > first:
                if len(groups[last][2]) > MAX_DIGITS or kinds[last - 1] != kinds[first]:
                    break
                window += groups[last][2]
                sizes.append(len(groups[last][2]))
            if len(window) > MAX_DIGITS:
                break
            if len(window) >= MIN_DIGITS and luhn_valid(window):
                odd = 0 if _looks_grouped_like_a_card(sizes) else 1
                # A group joined on either side like the window's own groups
                # is left hanging: "6304 0000 0000 0000 000" is one number.
                kind = kinds[first] if last > first else None
                hanging = kind is not None and (
                    (first > 0 and kinds[first - 1] == kind)
                    or (last < len(kinds) and kinds[last] == kind)
                )
                preference = (odd, int(hanging), _LENGTH_RANK[len(window)], start)
                found.append((preference, start, groups[last][1]))
    return found


def _chosen(candidates: list[tuple[tuple, int, int]]) -> list[tuple[int, int]]:
    """The likeliest candidates that do not overlap, in text order."""
    chosen: list[tuple[int, int]] = []
    for _, start, end in sorted(candidates):
        if all(end <= other_start or start >= other_end for other_start, other_end in chosen):
            chosen.append((start, end))
    return sorted(chosen)


def _mask_run(match: re.Match) -> str:
    run = match.group()
    if len(run) < MIN_DIGITS:
        return run
    candidates = _candidates(run)
    if not candidates:
        return run
    pieces, position = [], 0
    for start, end in _chosen(candidates):
        digits = _ascii_digits("".join(_GROUP.findall(run[start:end])))
        pieces += [run[position:start], MASK, digits[-4:]]
        position = end
    pieces.append(run[position:])
    return "".join(pieces)


def mask_card_numbers(text: str) -> str:
    """Return ``text`` with every card or account number masked to its last 4 digits."""
    if not text or len(text) < MIN_DIGITS:
        return text
    return _RUN.sub(_mask_run, text)


def mask_log_text(text: str) -> str:
    """``text`` masked, percent-encoded URLs included (``?q=4111%201111%201111%201111``)."""
    masked = mask_card_numbers(text)
    if "%" in masked:
        decoded = unquote(masked)
        decoded_masked = mask_card_numbers(decoded)
        if decoded_masked != decoded:
            return decoded_masked
    return masked


def contains_card_number(text: str) -> bool:
    return isinstance(text, str) and mask_card_numbers(text) != text


def mask_json(value):
    """``value`` (decoded JSON) with every string in it, keys included, masked."""
    if isinstance(value, str):
        return mask_card_numbers(value)
    if isinstance(value, dict):
        return {mask_json(key): mask_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_json(item) for item in value]
    return value


def json_strings(value) -> Iterator[str]:
    """Every string (keys included) inside decoded JSON."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


# --- Model fields ------------------------------------------------------------


class _MasksCardNumbers:
    """Masks card and account numbers before a value reaches the database.

    Masking in the field, not in a form, covers every way in: forms, the
    admin, services, ``save()``, ``QuerySet.update()``, ``bulk_create()`` and
    ``bulk_update()`` (all of them go through ``get_prep_value``); ``pre_save``
    also masks the instance, so what the caller holds is what was stored.
    """

    @staticmethod
    def _mask(value):
        return mask_card_numbers(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return self._mask(value) if value is not None else value

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if value is not None and not hasattr(value, "resolve_expression"):
            value = self._mask(value)
            setattr(model_instance, self.attname, value)
        return value


class MaskedTextField(_MasksCardNumbers, models.TextField):
    pass


class MaskedCharField(_MasksCardNumbers, models.CharField):
    pass


class MaskedEmailField(_MasksCardNumbers, models.EmailField):
    pass


class MaskedJSONField(_MasksCardNumbers, models.JSONField):
    """A JSON document kept for the record: every string in it is masked."""

    _mask = staticmethod(mask_json)


def masked_fields(model) -> list[models.Field]:
    return [field for field in model._meta.concrete_fields if isinstance(field, _MasksCardNumbers)]


def mask_stored_card_numbers(apps, app_label: str) -> int:
    """Mask what is already stored in every masked column of ``app_label``.

    The data migrations call this with their historical ``apps``. Rows are
    read and rewritten with ``update()`` on the base manager (append-only
    ledgers refuse ``update()`` on their own manager, and rightly: this is the
    one correction the law demands). Returns the number of rows changed.
    """
    changed = 0
    for model in apps.get_app_config(app_label).get_models():
        fields = masked_fields(model)
        if not fields:
            continue
        names = [field.attname for field in fields]
        manager = model._base_manager
        rows = manager.values_list("pk", *names).order_by("pk").iterator(chunk_size=2000)
        for pk, *values in rows:
            updates = {}
            for field, value in zip(fields, values, strict=True):
                masked = field._mask(value) if value is not None else None
                if masked != value:
                    updates[field.attname] = masked
            if updates:
                # A queryset update() would mask again on the way in; it is
                # idempotent enough, and it is what reaches the database.
                models.QuerySet(model, using=manager.db).filter(pk=pk).update(**updates)
                changed += 1
    return changed


# --- Logs ---------------------------------------------------------------------


class MaskCardNumbersFilter(logging.Filter):
    """Masks a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call is the handler's to report
            return True
        masked = mask_log_text(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_log_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_log_text(record.stack_info)
        return True


class MaskingFormatter(logging.Formatter):
    """Formats a record (message, traceback, everything) and masks the result.

    ``wrap`` names another formatter class to do the formatting (e.g.
    ``django.utils.log.ServerFormatter`` for the dev server's access lines);
    ``wrapped`` is an instance to wrap (Celery's and gunicorn's own).
    """

    def __init__(self, *args, wrap: str = "", wrapped: logging.Formatter | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if wrap:
            module, _, name = wrap.rpartition(".")
            wrapped = getattr(importlib.import_module(module), name)(*args, **kwargs)
        self.wrapped = wrapped

    def format(self, record: logging.LogRecord) -> str:
        text = self.wrapped.format(record) if self.wrapped else super().format(record)
        return mask_log_text(text)


def mask_handlers(logger: logging.Logger) -> None:
    """Make every handler of ``logger`` mask what it writes (for loggers set up by others)."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, MaskingFormatter):
            handler.setFormatter(MaskingFormatter(wrapped=handler.formatter or logging.Formatter()))
