"""The keys a customer is matched by (pipeline.sameness) and searched by (the nav's search).

A phone's key is its digits (at least ``MIN_PHONE_DIGITS``), an email's is the
address in any case, a name's (and a company's) the name with case and spaces
ignored. Each key is written twice, side by side here, because it is computed
in two places: in Python from what someone types (``name_key`` …), and by the
database as a column of ``Customer`` (``*_KEY_SQL``: a stored generated
column, indexed), so that looking up the customers with a key is an index
lookup, not the expression run on each of hundreds of thousands of rows. The
database keeps the columns whatever writes the row (a save, ``update()``,
COPY). Change a key here, in both forms, and add the migration it needs.
"""

from django.db.models import CharField, Value
from django.db.models.functions import Lower, Replace

# What a phone's key leaves out in SQL; in Python every non-digit goes.
PHONE_PUNCTUATION = (" ", "-", "(", ")", ".", "+", "/")
MIN_PHONE_DIGITS = 6


def name_key(name: str) -> str:
    return "".join((name or "").lower().split())


def company_key(company: str) -> str:
    return name_key(company)


def email_key(email: str) -> str:
    return (email or "").strip().lower()


def phone_key(phone: str) -> str:
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    return digits if len(digits) >= MIN_PHONE_DIGITS else ""


def _squeezed(column: str):
    return Lower(Replace(Replace(column, Value(" "), Value("")), Value("\t"), Value("")))


def name_key_sql():
    return _squeezed("name")


def company_key_sql():
    return _squeezed("company")


def email_key_sql():
    return Lower("email")


def phone_key_sql():
    expression = "phone"
    for mark in PHONE_PUNCTUATION:
        expression = Replace(expression, Value(mark), Value(""), output_field=CharField())
    return expression
