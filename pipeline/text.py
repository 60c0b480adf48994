"""Text rules shared by every app: values that end up in an email header.

A carriage return or line feed in a header value is refused by Python's email
package (``ValueError``) and, worse, could forge a header. Names, companies and
subjects are cleaned where they are entered (forms) and again where a header is
built, with the same function, so one bad value can never stop an email run.
"""

import re

# Every character Python's str.splitlines() breaks on, plus other control characters.
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029\x00-\x08\x0e-\x1f\x7f]+")
_SPACES = re.compile(r"[ \t]{2,}")


def single_line(value: str | None) -> str:
    """``value`` on one line: every line break or control character becomes one space."""
    if not value:
        return ""
    return _SPACES.sub(" ", _LINE_BREAKS.sub(" ", str(value))).strip()
