"""Spreadsheet cells: what the board's export writes and what the deal import accepts.

A spreadsheet (Excel, LibreOffice, Google Sheets) runs a cell that begins with
``=``, ``+``, ``-`` or ``@`` as a formula, and strips a leading tab or carriage
return first; a customer named ``=HYPERLINK("http://x","y")`` would become a
link, or worse (CSV injection, OWASP). Going out, ``safe_cell`` writes such a
text cell with a leading apostrophe, which spreadsheets show as text and hide.
Coming in, ``cell_problem`` refuses such a cell (and an over-long one) with a
message for the row: the import shows it and saves nothing, rather than guess
what was meant.
"""

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The longest cell the import reads: more than any field it fills (notes included).
MAX_CELL_CHARS = 5_000
# A phone number may begin with "+": digits and the usual punctuation, nothing else.
_PHONE = re.compile(r"\+?[0-9][0-9 ().\-/]*", re.ASCII)


def safe_cell(text: str) -> str:
    """A text cell for a CSV file, shown as text by spreadsheets (the OWASP rule).

    Only text goes through here: numbers (amounts, ids, days) are written as
    numbers, so a spreadsheet can still sum them.
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell_problem(column: str, value: str, *, text: bool = True) -> str | None:
    """Why an imported cell cannot be taken as it is, or None if it can.

    Every cell has a length limit. A formula is refused only in a text column
    (an amount of "-5" is read as a number and refused by the amount's own
    rule), and a phone number's leading "+" is no formula when the rest is a
    phone number.
    """
    if len(value) > MAX_CELL_CHARS:
        return f"{len(value):,} characters; a cell holds at most {MAX_CELL_CHARS:,}."
    if not text or (column == "phone" and _PHONE.fullmatch(value)):
        return None
    if value.startswith(FORMULA_STARTS):
        shown = {"\t": "a tab", "\r": "a line break"}.get(value[0], f"“{value[0]}”")
        return (
            f"starts with {shown}, which a spreadsheet would run as a formula: "
            "remove it, or start the cell with a letter or digit."
        )
    return None
